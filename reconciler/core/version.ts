/** tidemark's version, as `--version`, saved plans and the plan's `tool` say it (package.json's, checked by a test). */
export const TIDEMARK_VERSION = '0.1.0';
