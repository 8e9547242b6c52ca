#!/usr/bin/env bun
// `sluice serve` started without its allocator settings first replaces this process with
// one that has them (allocator-env.ts), before the rest of sluice is loaded: the CLI is
// imported only after that check, so the re-execution does not load it twice.
import { applyAllocatorEnv } from "./allocator-env.ts";

applyAllocatorEnv();
await import("./cli/run.ts");
