/** `GET /whoami`: the user and brand behind the token, including the brand's datacenter. */
import type { Route } from '../context.ts';
import { ok } from '../envelope.ts';

export const whoamiRoutes: Route[] = [
  {
    method: 'GET',
    pattern: '/whoami',
    handler: (ctx) => {
      const c = ctx.store.config;
      return ok({
        brandId: c.brandId,
        userId: c.userId,
        userName: c.userName,
        accountType: c.accountType,
        firstName: c.firstName,
        lastName: c.lastName,
        email: c.email,
        datacenter: c.datacenter,
      });
    },
  },
];
