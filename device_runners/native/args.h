// The runner's command line (the contract shared with device_runners/python_runner.py and launch.py).
#pragma once

#include <cmath>
#include <cstdlib>
#include <string>

namespace harness {

constexpr const char* kUsage =
    "usage: harness_runner --program P.pte --inputs IN.bin --result R.json [--outputs OUT.bin] [--warmup W]\n"
    "                      [--iterations N] [--min-seconds S] [--threads T] [--affinity 0,1|4-7] [--etdump D.etdp]\n"
    "                      [--method forward] [--xnnpack-cache PACKED.bin] [--max-samples K]\n"
    "                      [--warmup-seconds S] [--max-seconds S] [--near-cores-ns NS --settle-seconds S]\n";

struct Args {
  std::string program, inputs, result, outputs, affinity, etdump, method = "forward";
  std::string xnnpack_cache;  // XNNPACK's packed weights on disk: written by the first run, mmapped by later ones
  long warmup = 10, iterations = 50, threads = 0;  // threads 0: keep the pool's default size
  long max_samples = 100000;  // latencies kept before the list is thinned (at least twice --iterations)
  double min_seconds = 0.0;
  double warmup_seconds = 0.0;  // the warmup lasts this long as well as --warmup runs
  double max_seconds = 0.0;     // 0: no cap; else the timed loop ends here even short of --iterations
  // The near-cores gate (evidence.h core_round_trip_ns): before timing, wait up to settle_seconds while a core round
  // trip takes over kFarFactor x near_cores_ns (near CPUs' round trip in this campaign). 0: no gate.
  double near_cores_ns = 0.0;
  double settle_seconds = 0.0;
};

// "" on success, else a one-line reason naming the flag.
inline std::string parse_args(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return "flag " + flag + " needs a value";
    std::string v = argv[++i];
    char* end = nullptr;
    long x = 0;
    auto integer = [&](long lo) {
      x = std::strtol(v.c_str(), &end, 10);
      return *end == '\0' && end != v.c_str() && x >= lo;
    };
    if (flag == "--program") a->program = v;
    else if (flag == "--inputs") a->inputs = v;
    else if (flag == "--result") a->result = v;
    else if (flag == "--outputs") a->outputs = v;
    else if (flag == "--affinity") a->affinity = v;
    else if (flag == "--etdump") a->etdump = v;
    else if (flag == "--method") a->method = v;
    else if (flag == "--xnnpack-cache") a->xnnpack_cache = v;
    else if (flag == "--warmup" || flag == "--iterations" || flag == "--threads" || flag == "--max-samples") {
      if (!integer(flag == "--threads" ? 1 : flag == "--max-samples" ? 2 : 0)) return "bad value for " + flag + ": " + v;
      (flag == "--warmup" ? a->warmup : flag == "--iterations" ? a->iterations
       : flag == "--threads" ? a->threads : a->max_samples) = x;
    } else if (flag == "--min-seconds" || flag == "--warmup-seconds" || flag == "--max-seconds" ||
               flag == "--near-cores-ns" || flag == "--settle-seconds") {
      double& d = flag == "--min-seconds"      ? a->min_seconds
                  : flag == "--warmup-seconds" ? a->warmup_seconds
                  : flag == "--max-seconds"    ? a->max_seconds
                  : flag == "--near-cores-ns"  ? a->near_cores_ns
                                               : a->settle_seconds;
      d = std::strtod(v.c_str(), &end);
      if (*end != '\0' || end == v.c_str() || !(d >= 0) || !std::isfinite(d)) return "bad value for " + flag + ": " + v;
    } else {
      return "unknown flag " + flag;
    }
  }
  if (a->program.empty() || a->inputs.empty() || a->result.empty())
    return "--program, --inputs and --result are required";
  return "";
}

}  // namespace harness
