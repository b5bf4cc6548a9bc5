/** Trainable parameters of bottleneck adapters, as a formula of the base's sizes (README). */
export function bottleneckParameterFormula(o: { layers: number; positions: number; dim: number; size: number; visionDim?: number; projectorDepth?: number }): number {
  const adapters = o.layers * o.positions * (2 * o.dim * o.size + o.size + o.dim);
  if (o.visionDim === undefined) return adapters;
  const depth = o.projectorDepth ?? 2;
  const projector = o.visionDim * o.dim + o.dim + (depth - 1) * (o.dim * o.dim + o.dim);
  return adapters + projector;
}
