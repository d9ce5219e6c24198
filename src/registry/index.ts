// The registry layer's public surface.
export * from './types.js';
export { Registry, type DeployOptions, type VersionInfo, type RegistryOptions, type RefreshOptions } from './registry.js';
export { parseManifest, validateFunctionName, isValidFunctionName } from './manifest.js';
export { extractArchive, packDirectory, DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits } from './archive.js';
export { compileFunction, NODE_CODE_ENTRY, type CompiledCode } from './compile.js';
