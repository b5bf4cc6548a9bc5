import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseMethodConfig } from './config.js';
import { knownKeysAt, nearest } from './keys.js';

const schema = z
  .object({
    depths: z.array(z.number().int()).default([1]),
    train: z.object({ projector: z.boolean().default(true), embedding: z.boolean().default(false) }).strict().default({ projector: true, embedding: false }),
    mode: z.union([z.object({ kind: z.literal('a'), rank: z.number() }).strict(), z.object({ kind: z.literal('b'), width: z.number() }).strict()]).optional(),
  })
  .strict();

describe('method configs', () => {
  it('a valid config parses with its defaults', () => {
    expect(parseMethodConfig(schema, { depths: [2] }, 'method.config')).toEqual({ depths: [2], train: { projector: true, embedding: false } });
  });

  it('an unknown key is named with its path, the nearest known key and the allowed ones', () => {
    expect(() => parseMethodConfig(schema, { dpeths: [1] }, 'method.config')).toThrow(/method\.config\.dpeths: unknown key \(did you mean 'depths'\?\); allowed: depths, mode, train/);
    expect(() => parseMethodConfig(schema, { train: { Projector: false } }, 'method.config')).toThrow(/method\.config\.train\.Projector: unknown key \(did you mean 'projector'\?\)/);
  });

  it('a key near nothing gets no hint; a bad value names its path', () => {
    let msg = '';
    try {
      parseMethodConfig(schema, { colour: 'red' }, 'method.config');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/method\.config\.colour: unknown key; allowed: depths, mode, train/);
    expect(() => parseMethodConfig(schema, { depths: ['x'] }, 'method.config')).toThrow(/method\.config\.depths\.0: /);
  });

  it('keys are found through defaults, optionals and unions', () => {
    expect(knownKeysAt(schema, ['train'])).toEqual(['embedding', 'projector']);
    expect(knownKeysAt(schema, ['mode'])).toEqual(['kind', 'rank', 'width']);
    expect(knownKeysAt(schema, ['depths'])).toBeUndefined();
    expect(nearest('rnak', ['rank', 'width'])).toBe('rank');
    expect(nearest('zzzz', ['rank', 'width'])).toBeUndefined();
  });
});
