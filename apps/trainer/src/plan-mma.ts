/** `adaptorkit plan --mma`: the shape-only base frozen, LaVIN's MMA adapters attached to its LM layers. */
import type { CausalLM, Module } from '@adaptorkit/core';
import { attachMma } from '@adaptorkit/mma';

export function mmaOnFrozenLM(model: Module): void {
  model.freeze();
  attachMma({ lm: model as CausalLM }, {});
}
