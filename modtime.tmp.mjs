import { register } from 'tsx/esm/api';
register();
for (const m of process.argv.slice(2)) { const t0 = performance.now(); await import(m); console.log(m, (performance.now() - t0).toFixed(0)); }
