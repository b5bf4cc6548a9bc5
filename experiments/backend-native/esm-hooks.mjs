// Node module hooks used by the bench only: @tensorflow/tfjs-core ships its per-file ESM build
// (dist/**/*.js, with extensionless imports) in a package without "type": "module", so plain Node
// cannot load `@tensorflow/tfjs-core/dist/register_all_gradients.js`, which @adaptorkit/core imports
// to get gradients. These hooks resolve the extensionless imports and load those files as ESM.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ESM_DIR = /\/@tensorflow\/tfjs-core\/dist\/(?!tf-core\.)/;

export async function resolve(specifier, context, next) {
  if (context.parentURL && ESM_DIR.test(context.parentURL) && specifier.startsWith('.') && !/\.(m?js|json)$/.test(specifier)) {
    const url = new URL(specifier, context.parentURL);
    const p = fileURLToPath(url);
    if (existsSync(`${p}.js`)) return { url: `${url.href}.js`, shortCircuit: true, format: 'module' };
    if (existsSync(`${p}/index.js`)) return { url: `${url.href}/index.js`, shortCircuit: true, format: 'module' };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (ESM_DIR.test(url) && url.endsWith('.js')) return next(url, { ...context, format: 'module' });
  return next(url, context);
}
