// harness_runner: load an ExecuTorch program, time it on a file of real inputs, write a JSON result.
//
//   harness_runner --program P.pte --inputs IN.bin --result R.json [--outputs OUT.bin] [--warmup W]
//                  [--iterations N] [--min-seconds S] [--threads T] [--affinity 0,1|4-7] [--etdump D.etdp]
//                  [--method forward] [--xnnpack-cache PACKED.bin]
//
// Any failure writes {"error": ...} to R.json (even on a crash signal), says why on stderr and exits non-zero.
// SIGINT/SIGTERM/SIGHUP during timing: R.json holds the iterations timed so far ("partial": true), exit 128+signal.
// The benchmark itself is runner_core.cpp (shared with the iOS app); this is its command-line front end.
#include <cstdio>
#include <cstring>
#include <string>

#include "failure.h"
#include "runner_core.h"

int main(int argc, char** argv) {
  harness::install_handlers();
  for (int i = 1; i + 1 < argc; ++i)  // known before parsing, so even a bad flag leaves an error JSON
    if (std::strcmp(argv[i], "--result") == 0) harness::g_result = argv[i + 1];
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(harness::kUsage, stdout);
    return 0;
  }
  harness::Args args;
  std::string err = harness::parse_args(argc, argv, &args);
  if (!err.empty()) {
    std::fputs(harness::kUsage, stderr);
    harness::fail(err);
  }
  return harness::run_benchmark(args);
}
