/** `adaptorkit compose`: the ShapesWorld composition experiment (compose/run.ts), as the demo's DAMC group runs it. */
import type { Command } from 'commander';
import { composeCli } from './run.js';

export function registerComposeCommand(program: Command): void {
  program
    .command('compose')
    .description(
      'The ShapesWorld composition experiment: an image model and a sound model on copies of the frozen LM, composed with NaiveMC and DAMC, scored per modality and jointly. ' +
        'Flags: --mode frozen,naive,decoupled|both|all --task common|count --steps --batch --lr --rank --train --test --joint --seed --search yes|no --grid 0.5,1 --single yes|no --logEvery --json <file> --diag; ' +
        'or --table a.json b.json. Split into phases (a queue flow): --train-only image|sound --save <dir> (one --mode), then --from <image dir>,<sound dir> (same flags) composes and scores the saved models. ' +
        'A repeated flag: the last wins.',
    )
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .argument('[flags...]')
    .action(async (flags: string[]) => composeCli(flags));
}
