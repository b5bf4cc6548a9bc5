import { register } from 'node:module';
register('./esm-hooks.mjs', import.meta.url);
