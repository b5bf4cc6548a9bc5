/**
 * @adaptorkit/core — the tensor core: backends, modules with freezing, transformer layers, models,
 * training primitives.
 */
export * as tf from '@tensorflow/tfjs-core';
export * from './errors.js';
export * from './backend/init.js';
export { registerMissingKernels, ADAMW, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, KERNEL_NAMES, type AdamWAttrs } from './backend/kernels.js';

export { Parameter, manualSeed, shapeOnly, isShapeOnly, shapesEqual, externalShapeOf, fromExternalLayout, toExternalLayout } from './nn/parameter.js';
export type { Init, ParamLayout } from './nn/parameter.js';
export { Module, ModuleList } from './nn/module.js';
export type { Forward, ForwardContext } from './nn/context.js';
export { Linear, linear, Embedding, RMSNorm, LayerNorm, activate, activationFromHF, dropout, ACTIVATIONS } from './nn/layers.js';
export type { Activation, LinearOptions } from './nn/layers.js';
export { BF16_MATMUL, BF16_GATHER, bf16Supported, assertBf16Supported, bf16Linear, bf16Gather, packBf16, unpackBf16, type WeightsDtype } from './nn/bf16.js';
export { weightStorage, describeWeightStorage, type WeightStorage } from './nn/weight-storage.js';
export { recomputed, dropoutMask, type RecomputeMode } from './nn/recompute.js';
export { RotaryTables, applyRope, ropeInvFreq } from './nn/rope.js';
export { rmsNormalize, layerNormalize, silu, swiglu, attentionSoftmax, setFusedKernels, hasFused, RMS_NORM, RMS_NORM_GRAD, LAYER_NORM, LAYER_NORM_GRAD, SWIGLU, SWIGLU_GRAD, ROPE, ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD } from './nn/fused.js';
export type { RopeScaling } from './nn/rope.js';
export { Attention, causalMask, slidingWindowMask } from './nn/attention.js';
export type { AttentionOptions, AttentionInput, KVSlot, LayerKV, RopeTables } from './nn/attention.js';
export { GatedMLP, FusedGatedMLP, MLP } from './nn/mlp.js';
export { DecoderLayer, EncoderLayer, ADAPTER_SLOTS } from './nn/blocks.js';
export type { AdapterSlot, DecoderLayerOptions, EncoderLayerOptions } from './nn/blocks.js';

export { CausalLM, LlamaModel, KVCache, resolveCausalLMConfig, newDecoderLayer, newFinalNorm, LM_FAMILIES } from './models/causal-lm.js';
export type { CausalLMConfig, ResolvedCausalLMConfig, LMForwardInput, LMForwardOutput, LayerRunOptions, LMFamily, LayerType } from './models/causal-lm.js';
export { VisionEncoder, PatchEmbedding, resolveVisionConfig } from './models/vision.js';
export type { VisionConfig, VisionOutput } from './models/vision.js';
export { MLPProjector, BottleneckProjector, cellPoolMatrix, poolTokens } from './models/projectors.js';
export { spliceFeatures } from './models/multimodal.js';

export { Rng } from './train/rng.js';
export { AdamW, defaultParamGroups, scheduledLr, clipGradNorm, globalNorm, GradAccumulator, disposeGrads } from './train/optim.js';
export type { AdamWOptions, ParamGroup, ScheduleOptions } from './train/optim.js';
export { valueAndGrads } from './train/grad.js';
export { trainLoop } from './train/loop.js';
export type { LoopOptions, LoopResult } from './train/loop.js';
export type { LossAndGrads } from './train/grad.js';
export { maskedCrossEntropy, ignoreTokens, sequenceNll, symmetricInfoNCE, l2normalize, IGNORE_INDEX } from './train/losses.js';
export type { CrossEntropyOptions } from './train/losses.js';

// Checkpoints, tokenizers, generation, planning (io/, generate/, plan/)
export { skipInit } from './nn/parameter.js';
export { SafetensorsFile, readSafetensors, writeSafetensors, parseHeader, MAX_HEADER_BYTES, MAX_TENSORS } from './io/safetensors.js';
export type { TensorInfo, WriteOptions } from './io/safetensors.js';
export type { SafetensorsDtype } from './io/dtypes.js';
export { f16ToF32, bf16ToF32, f32ToF16, f32ToBf16 } from './io/dtypes.js';
export { writeFileAtomic, writeTextAtomic } from './io/atomic.js';
export { CheckpointReader } from './io/checkpoint.js';
export { causalLMConfigFromHF, visionConfigFromHF, gemmaEmbedScale, SUPPORTED_LM_TYPES } from './io/hf-config.js';
export type { HFConfig } from './io/hf-config.js';
export { loadCausalLM, loadVisionEncoder, loadWeights, saveWeights, checkpointSource } from './io/hf.js';
export type { CheckpointSource, LoadModelOptions, LoadWeightsOptions } from './io/hf.js';
export { saveAdapter, loadAdapter, readAdapterConfig, baseFingerprint, adapterBasePath, adapterFiles, ADAPTER_WEIGHTS, ADAPTER_CONFIG, LEGACY_ADAPTER_WEIGHTS, LEGACY_ADAPTER_CONFIG } from './io/adapter.js';
export type { AdapterFile, SaveAdapterOptions } from './io/adapter.js';
export { loadTokenizer, HFTokenizer } from './io/tokenizer.js';
export type { ChatMessage, ChatTemplateMessage, ChatTemplateOptions, SpecialTokens } from './io/tokenizer.js';
export { ChatTemplate, MAX_TEMPLATE_DEPTH, MAX_TEMPLATE_CHARS } from './io/jinja-template.js';
export { generate, sampleToken, argmax } from './generate/generate.js';
export { leftPadRows, padKeyMask } from './generate/ragged.js';
export type { GenerateOptions, GenerateResult, GenerativeLM, SamplingOptions } from './generate/generate.js';
export { plan, buildShapeOnly, normalizeConfig } from './plan/plan.js';
export type { Plan, PlanOptions, MemoryEstimate } from './plan/plan.js';
// LoRA adapters on a frozen base (several per process), PEFT files both ways, merged HF folders
export { LoraLinear, ModuleCopies, loraLinears, adapterNames, setAdapter, activeAdapters, disableAdapters, deleteAdapter, wrapLinearAt, loraWrapBlocker } from './nn/lora.js';
export type { LoraAdapter } from './nn/lora.js';
export { addWeightedAdapter } from './nn/lora-combine.js';
export type { Combination, WeightedAdapterInfo } from './nn/lora-combine.js';
export { PEFT_CONFIG, PEFT_WEIGHTS, PEFT_PREFIX, parsePeftConfig, isLoraTarget, isModuleToSave, patternKey, loraShapeFor } from './io/peft-config.js';
export type { PeftLoraConfig } from './io/peft-config.js';
export { loadPeftAdapter, savePeftAdapter, writePeftAdapter, readPeftConfig, isPeftAdapterDir, peftConfigOf } from './io/peft.js';
export type { PeftLayerFactors, WritePeftOptions } from './io/peft.js';
export { writeHfFolder, parseSize, TOKENIZER_FILES } from './io/hf-folder.js';
export type { HfDtype, HfTensorEntry, WriteHfFolderOptions, HfFolderReport } from './io/hf-folder.js';
export { mergedEntries, mergeAdaptersToFolder } from './io/merge-adapter.js';
export type { MergeToFolderOptions } from './io/merge-adapter.js';

// The AdaptorMethod contract every method package implements (method/)
export * from './method/index.js';
