// The benchmark as a function: the command-line runner (runner.cpp) and the iOS app (device_runners/ios/app/main.mm)
// are thin front ends that turn their arguments into an Args and call run_benchmark.
#pragma once

#include "args.h"

namespace harness {

// Crash and stop signals leave an error (or partial) result JSON behind: call first, before parsing arguments.
void install_handlers();

// Load args.program, warm up, time args.iterations runs (and at least args.min_seconds), write args.outputs and
// the JSON result at args.result, with progress lines on stderr. Returns the exit code: 0, or 128+signal when a
// stop signal ended the timing early (the result then holds the partial samples). Any failure writes
// {"error": ...} to args.result and exits the process with 1 (harness::fail).
int run_benchmark(const Args& args);

}  // namespace harness
