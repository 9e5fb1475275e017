// The benchmark itself, shared by the command-line runner (runner.cpp) and the iOS app (device_runners/ios/app):
// load an ExecuTorch program, time it on a file of real inputs, write the outputs and a JSON result.
#include "runner_core.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef HARNESS_NO_ETDUMP  // the Apple frameworks ship no ETDump: the iOS app builds without --etdump
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

#include "evidence.h"
#include "failure.h"
#include "json.h"
#include "page_dropping_loader.h"
#include "process.h"
#include "stop.h"
#include "tensorfile.h"
#include "threadpool_api.h"
#include "xnnpack_cache.h"

#ifndef HARNESS_ET_VERSION
#define HARNESS_ET_VERSION "unknown"
#endif
#ifndef HARNESS_RUNNER_HASH
#define HARNESS_RUNNER_HASH "dev"
#endif
#if defined(__aarch64__)
#define HARNESS_ABI "arm64-v8a"
#elif defined(__x86_64__)
#define HARNESS_ABI "x86_64"
#else
#define HARNESS_ABI "unknown"
#endif

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;
using executorch::extension::MallocMemoryAllocator;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::HierarchicalAllocator;
using executorch::runtime::MemoryManager;
using executorch::runtime::Method;
using executorch::runtime::MethodMeta;
using executorch::runtime::Program;
using executorch::runtime::Span;
using harness::JsonObject;
using harness::fail;
using harness::stage;
using Clock = std::chrono::steady_clock;

namespace {

// tensorfile.py dtype codes <-> ExecuTorch scalar types.
const ScalarType kTypes[] = {ScalarType::Float, ScalarType::Long, ScalarType::Int,  ScalarType::Half,
                             ScalarType::Bool,  ScalarType::Byte, ScalarType::Char, ScalarType::Double};
int code_of(ScalarType t) {
  for (int c = 0; c < 8; ++c)
    if (kTypes[c] == t) return c;
  return -1;
}

std::string spec_text(uint32_t code, const std::vector<int64_t>& dims) {
  std::string s = std::string(harness::dtype_name(code)) + "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string spec_json(const harness::TensorSpec& s) {
  return JsonObject().str("dtype", harness::dtype_name(s.dtype))
      .raw("shape", harness::json_list(s.dims, [](int64_t d) { return std::to_string(d); })).text();
}

void check(Error e, const std::string& what) {
  if (e != Error::Ok) fail(what + " failed: " + executorch::runtime::to_string(e) + " (0x" +
                           std::to_string(static_cast<int>(e)) + ")");
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One tensor per (example, input), owning the size/stride arrays that TensorImpl only points at.
struct InputTensor {
  std::vector<int32_t> sizes, strides;
  std::vector<uint8_t> dim_order;
  std::unique_ptr<TensorImpl> impl;
};

}  // namespace

namespace harness {

void install_handlers() {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, on_crash);
  install_stop_handlers();
}

int run_benchmark(const Args& args) {
  g_result = args.result.c_str();
  std::string err;
  executorch::runtime::register_pal(executorch::runtime::PalImpl::create(harness::emit_log, __FILE__));
  executorch::runtime::runtime_init();
  long rss_start_kb = harness::proc_kb("/proc/self/status", "VmRSS");
  JsonObject r, memory_stages;
  r.str("runner", "native");
  memory_stages.raw("start", harness::memory_snapshot_json());

  stage("setting affinity and threads");
  if (!args.affinity.empty()) {
    std::vector<int> cpus = harness::parse_cpu_list(args.affinity);
    if (cpus.empty()) fail("bad value for --affinity: " + args.affinity + " (expected e.g. 0,1 or 4-7)");
    std::string why = harness::set_affinity(cpus);
    if (!why.empty()) fail(why + " for --affinity " + args.affinity);
  }
  // Before the program loads: XNNPACK takes the pool when the delegate initialises.
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (!pool) fail("the ExecuTorch threadpool could not be created: cpuinfo failed to initialise "
                  "(the device must expose /proc/cpuinfo and /sys/devices/system/cpu)");
  if (args.threads > 0 && !pool->_unsafe_reset_threadpool(static_cast<uint32_t>(args.threads)))
    fail("could not resize the threadpool to " + std::to_string(args.threads) + " threads");

  stage("reading inputs");
  harness::TensorFile in;
  err = harness::read_tensor_file(args.inputs, &in);
  if (!err.empty()) fail(err);

  stage("loading program");
  auto t_load = Clock::now();
  harness::PageDroppingLoader loader;
  err = loader.open(args.program);
  if (!err.empty()) fail(err);
  auto program = Program::load(&loader, Program::Verification::InternalConsistency);
  if (!program.ok()) fail("program " + args.program + " is not a valid ExecuTorch program (" +
                          executorch::runtime::to_string(program.error()) + ")");
  memory_stages.raw("program_loaded", harness::memory_snapshot_json());
  auto meta_r = program->method_meta(args.method.c_str());
  if (!meta_r.ok()) fail("program " + args.program + " has no method '" + args.method + "'");
  MethodMeta meta = meta_r.get();

  std::vector<std::string> backend_names;
  for (size_t i = 0; i < meta.num_backends(); ++i) {
    const char* name = meta.get_backend_name(i).ok() ? meta.get_backend_name(i).get() : "?";
    if (std::find(backend_names.begin(), backend_names.end(), name) != backend_names.end()) continue;
    backend_names.push_back(name);
    auto* backend = executorch::runtime::get_backend_class(name);
    if (!backend) fail(std::string("program asks for backend ") + name + ", which this runner does not register");
    // Without /proc/cpuinfo and /sys/devices/system/cpu XNNPACK cannot initialise and would crash later.
    if (!backend->is_available())
      fail(std::string("backend ") + name + " failed to initialise on this device "
           "(XNNPACK needs readable /proc/cpuinfo and /sys/devices/system/cpu)");
  }

  std::vector<std::vector<uint8_t>> planned;
  std::vector<Span<uint8_t>> planned_spans;
  std::string planned_json = "[";
  planned.reserve(meta.num_memory_planned_buffers());
  for (size_t i = 0; i < meta.num_memory_planned_buffers(); ++i) {
    int64_t n = meta.memory_planned_buffer_size(i).get();
    planned.emplace_back(static_cast<size_t>(n));
    planned_spans.emplace_back(planned.back().data(), planned.back().size());
    planned_json += (i ? ", " : "") + std::to_string(n);
  }
  planned_json += "]";
  HierarchicalAllocator planned_memory({planned_spans.data(), planned_spans.size()});
  MallocMemoryAllocator method_allocator, temp_allocator;
  MemoryManager memory_manager(&method_allocator, &planned_memory, &temp_allocator);
#ifndef HARNESS_NO_ETDUMP
  std::unique_ptr<executorch::etdump::ETDumpGen> etdump;
  if (!args.etdump.empty()) etdump = std::make_unique<executorch::etdump::ETDumpGen>();
#else
  if (!args.etdump.empty()) fail("--etdump: this runner was built without ETDump");
  executorch::runtime::EventTracer* etdump_tracer = nullptr;
#endif
  harness::XnnpackCache xnnpack_cache;
  err = xnnpack_cache.configure(args.xnnpack_cache);
  if (!err.empty()) fail(err);
  loader.start_dropping();
#ifndef HARNESS_NO_ETDUMP
  executorch::runtime::EventTracer* etdump_tracer = etdump.get();
#endif
  auto method = program->load_method(args.method.c_str(), &memory_manager, etdump_tracer, nullptr,
                                     xnnpack_cache.load_options());
  loader.stop_dropping();
  if (!method.ok()) fail("loading method '" + args.method + "' of " + args.program + " failed: " +
                         executorch::runtime::to_string(method.error()) +
                         (args.xnnpack_cache.empty() ? "" : " (with --xnnpack-cache " + args.xnnpack_cache + ")"));
  err = xnnpack_cache.finish();
  if (!err.empty()) fail(err);
  double load_ms = ms_since(t_load);
  memory_stages.raw("method_loaded", harness::memory_snapshot_json());

  stage("checking inputs against the program");
  if (meta.num_inputs() != in.specs.size())
    fail("inputs file " + args.inputs + " has " + std::to_string(in.specs.size()) + " tensors per example, program " +
         args.program + " takes " + std::to_string(meta.num_inputs()));
  std::vector<std::vector<InputTensor>> tensors(in.num_examples);
  for (size_t k = 0; k < in.specs.size(); ++k) {
    const auto& s = in.specs[k];
    auto tm = meta.input_tensor_meta(k);
    if (!tm.ok()) fail("program input " + std::to_string(k) + " is not a tensor");
    std::vector<int64_t> want(tm->sizes().begin(), tm->sizes().end());
    int want_code = code_of(tm->scalar_type());
    if (want != s.dims || want_code != static_cast<int>(s.dtype))
      fail("inputs file " + args.inputs + " tensor " + std::to_string(k) + " is " + spec_text(s.dtype, s.dims) +
           ", program input " + std::to_string(k) + " expects " + spec_text(want_code, want));
    for (size_t e = 0; e < in.num_examples; ++e) {
      InputTensor& t = tensors[e].emplace_back();
      t.sizes.assign(s.dims.begin(), s.dims.end());
      t.strides.resize(s.dims.size());
      t.dim_order.resize(s.dims.size());
      for (int d = static_cast<int>(s.dims.size()) - 1, stride = 1; d >= 0; --d) {
        t.strides[d] = stride;
        t.dim_order[d] = static_cast<uint8_t>(d);
        stride *= t.sizes[d];
      }
      t.impl = std::make_unique<TensorImpl>(tm->scalar_type(), s.dims.size(), t.sizes.data(), in.ptrs[e][k],
                                            t.dim_order.data(), t.strides.data());
    }
  }
  auto set_inputs = [&](size_t e) {
    for (size_t k = 0; k < tensors[e].size(); ++k)
      check(method->set_input(EValue(Tensor(tensors[e][k].impl.get())), k), "set_input " + std::to_string(k));
  };

  stage("running the first inference");
  set_inputs(0);
  auto t_first = Clock::now();
  check(method->execute(), "first inference");
  double first_ms = ms_since(t_first);
  memory_stages.raw("first_inference", harness::memory_snapshot_json());

  stage("warming up");
  harness::Progress progress;
  progress.begin("warming up", args.warmup, args.warmup_seconds);
  auto t_warm = Clock::now();
  long warm = 0;
  for (; warm < args.warmup || ms_since(t_warm) < args.warmup_seconds * 1000; ++warm) {
    set_inputs(warm % in.num_examples);
    check(method->execute(), "warmup run " + std::to_string(warm));
    progress.tick(warm + 1);
  }
  if (warm > 0) progress.tick(warm, true);

  // The near-cores gate: threads that meet after every operator run 10-35% slower while the hypervisor keeps their
  // CPUs far apart (another CCD or socket), for seconds at a time; wait for them to come close, as the host's quiet
  // gate waits for other work, then warm up again (the caches cooled). Never fails the run: the evidence says.
  const bool threaded = pool->get_thread_count() >= 2;  // the core round trip only matters when threads meet
  double cores_before = threaded ? harness::core_round_trip_ns() : -1;
  std::string settle;
  if (cores_before > 0 && args.near_cores_ns > 0 && args.settle_seconds > 0) {
    const double far = harness::kFarFactor * args.near_cores_ns, first = cores_before;
    auto t_settle = Clock::now();
    if (first > far) stage("waiting for the CPUs to come close");
    while (cores_before > far && ms_since(t_settle) < args.settle_seconds * 1000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      double again = harness::core_round_trip_ns();
      if (again > 0) cores_before = again;
    }
    const double waited = ms_since(t_settle) / 1000.0;
    if (first > far)
      for (long w = 0; w < std::max(1L, std::min(args.warmup, 5L)); ++w) {
        set_inputs(static_cast<size_t>(w) % in.num_examples);
        check(method->execute(), "warmup run after the wait " + std::to_string(w));
      }
    harness::JsonObject g;
    g.num("near_ns", args.near_cores_ns).num("first_ns", first).num("waited_s", first > far ? waited : 0.0)
        .boolean("passed", cores_before <= far);
    settle = g.text();
  }

  stage("timing");
  // --min-seconds holds on any CPU, however fast the program: past `max_kept` samples the list is thinned to every
  // other sample and from then on every 2nd (4th, ...) run is kept, so memory stays bounded (and out of the RSS we
  // report) while the samples still span the whole timed period, in order. `timed_runs` and `sample_stride` say so.
  const size_t max_kept = std::max<size_t>(2 * static_cast<size_t>(args.iterations),
                                            static_cast<size_t>(args.max_samples));
  size_t stride = 1, runs = 0;
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(args.iterations));
  harness::g_deferred = 1;  // a stop signal now ends the loop and keeps what was measured
  progress.begin("timing", args.iterations, args.min_seconds);
  const double canary_before = harness::canary_ns_per_step();
  harness::EvidenceSample ev_start = harness::sample_evidence();
  constexpr double kProbeEveryMs = 250;
  constexpr size_t kMaxProbes = 2400;  // 10 minutes of probes, then no more
  std::vector<std::pair<double, double>> cores_during;  // (seconds into the timed loop, round trip ns)
  double next_probe_ms = kProbeEveryMs;
  auto t_timed = Clock::now();
  bool capped = false;  // --max-seconds ended the loop before --iterations or --min-seconds were met
  for (size_t i = 0; !harness::g_stop && (static_cast<long>(i) < args.iterations ||
                     ms_since(t_timed) < args.min_seconds * 1000); ++i) {
    if (args.max_seconds > 0 && i > 0 && ms_since(t_timed) >= args.max_seconds * 1000) {
      capped = true;
      break;
    }
    set_inputs(i % in.num_examples);
    auto t0 = Clock::now();  // only execute() is timed: the input copy is the harness's, not the model's
    check(method->execute(), "timed run " + std::to_string(i));
    double ms = ms_since(t0);
    runs = i + 1;
    if (i % stride == 0) {
      lat.push_back(ms);
      if (lat.size() >= max_kept) {
        size_t k = 0;
        for (size_t j = 0; j < lat.size(); j += 2) lat[k++] = lat[j];
        lat.resize(k);
        stride *= 2;
      }
    }
    progress.tick(static_cast<long>(runs));
    // the CPUs' distance through the loop, between two timed runs (outside execute()), about 4 times a second: the
    // report tells the share of the loop the run spent with its CPUs far apart (docs/statistics.md#far-cores)
    if (cores_before != -1 && ms_since(t_timed) >= next_probe_ms && cores_during.size() < kMaxProbes) {
      const double t = ms_since(t_timed) / 1000.0, ns = harness::core_round_trip_ns();
      if (ns > 0) cores_during.emplace_back(t, ns);
      next_probe_ms = ms_since(t_timed) + kProbeEveryMs;
    }
  }
  progress.tick(static_cast<long>(runs), true);
  double timed_s = ms_since(t_timed) / 1000.0;
  harness::EvidenceSample ev_end = harness::sample_evidence();
  const double canary_after = harness::canary_ns_per_step();
  std::string evidence = harness::evidence_json(ev_start, ev_end, timed_s, canary_before, canary_after, cores_before,
                                                threaded ? harness::core_round_trip_ns() : -1, settle, cores_during);
  // Memory now, before the outputs pass buffers every example's outputs: the figures are the model's, not ours.
  // VmHWM, not ru_maxrss: the kernel carries ru_maxrss across execve, so a runner (v)forked by a 500 MB Python
  // reported 500 MB. VmHWM belongs to this address space alone. ru_maxrss is kept only where /proc is missing.
  long ru_maxrss = harness::peak_rss_kb_getrusage();
  long pss = harness::proc_kb("/proc/self/smaps_rollup", "Pss");
  long hwm = harness::proc_kb("/proc/self/status", "VmHWM");
  long peak_rss = hwm >= 0 ? hwm : ru_maxrss;
  memory_stages.raw("timed", harness::memory_snapshot_json());

  std::vector<harness::TensorSpec> out_specs;
  for (size_t o = 0; o < method->outputs_size(); ++o) {
    const EValue& v = method->get_output(o);
    if (!v.isTensor()) continue;
    harness::TensorSpec s;
    s.dtype = static_cast<uint32_t>(code_of(v.toTensor().scalar_type()));
    s.dims.assign(v.toTensor().sizes().begin(), v.toTensor().sizes().end());
    out_specs.push_back(s);
  }
  if (!args.outputs.empty() && !harness::g_stop) {  // stopped: the outputs pass would only delay the exit
    stage("scoring examples");
    // one progress line per example at most every 0.5 s: under emulation an example takes seconds
    progress.begin("scoring examples", static_cast<long>(in.num_examples), 0);
    std::vector<std::vector<std::vector<uint8_t>>> outs(in.num_examples);
    for (size_t e = 0; e < in.num_examples; ++e) {
      if (harness::g_stop) break;  // stopped: the rest of the pass would only delay the exit
      progress.tick(static_cast<long>(e));
      set_inputs(e);
      check(method->execute(), "output run for example " + std::to_string(e));
      for (size_t o = 0; o < method->outputs_size(); ++o) {
        const EValue& v = method->get_output(o);
        if (!v.isTensor()) fail("output " + std::to_string(o) + " is not a tensor");
        if (code_of(v.toTensor().scalar_type()) < 0) fail("output " + std::to_string(o) + " has an unsupported dtype");
        auto* p = v.toTensor().const_data_ptr<uint8_t>();
        outs[e].emplace_back(p, p + v.toTensor().nbytes());
      }
    }
    progress.tick(static_cast<long>(in.num_examples), true);
    if (!harness::g_stop) {
      stage("writing outputs");
      err = harness::write_tensor_file(args.outputs, out_specs, outs);
      if (!err.empty()) fail(err);
    }
  }

#ifndef HARNESS_NO_ETDUMP
  if (etdump && !harness::g_stop) {
    stage("writing the etdump");
    auto dump = etdump->get_etdump_data();
    if (dump.buf == nullptr || dump.size == 0) fail("ETDump is empty (runtime built without event tracing?)");
    std::string bytes(static_cast<const char*>(dump.buf), dump.size);
    std::free(dump.buf);
    if (!harness::write_text_file(args.etdump, bytes)) fail("cannot write etdump " + args.etdump);
    r.integer("etdump_bytes", static_cast<long long>(dump.size));
  }
#endif

  stage("writing the result");
  r.num("load_ms", load_ms).num("first_inference_ms", first_ms)
      .raw("latencies_ms", harness::json_list(lat, harness::json_num))
      .integer("peak_rss_kb", peak_rss)
      .str("peak_rss_method", hwm >= 0 ? "/proc/self/status VmHWM" : "getrusage ru_maxrss")
      .integer("ru_maxrss_kb", ru_maxrss);
  pss >= 0 ? r.integer("pss_kb", pss) : r.null("pss_kb");
  pss >= 0 ? r.str("pss_method", "/proc/self/smaps_rollup Pss") : r.null("pss_method");
  hwm >= 0 ? r.integer("vmhwm_kb", hwm) : r.null("vmhwm_kb");
  rss_start_kb >= 0 ? r.integer("startup_rss_kb", rss_start_kb) : r.null("startup_rss_kb");
  r.raw("memory_stages", memory_stages.text());
  args.xnnpack_cache.empty() ? r.null("xnnpack_cache")
      : r.raw("xnnpack_cache", JsonObject().str("path", xnnpack_cache.path()).str("state", xnnpack_cache.state()).text());
  r.integer("num_examples", static_cast<long long>(in.num_examples))
      .integer("threads", static_cast<long long>(pool->get_thread_count()))
      .raw("runner_version", JsonObject().str("executorch", HARNESS_ET_VERSION).str("abi", HARNESS_ABI)
                                 .str("compiler", __VERSION__).str("source", HARNESS_RUNNER_HASH).text())
      .str("method", args.method).str("affinity", args.affinity).integer("warmup", args.warmup)
      .integer("iterations", static_cast<long long>(lat.size())).num("timed_seconds", timed_s)
      .integer("timed_runs", static_cast<long long>(runs)).integer("sample_stride", static_cast<long long>(stride))
      .raw("timing_evidence", evidence)
      .boolean("min_seconds_cut_short", timed_s < args.min_seconds).boolean("max_seconds_reached", capped)
      .str("timed", "Method::execute").str("data_loader", "mmap, pages dropped during method load")
      .raw("input_specs", harness::json_list(in.specs, spec_json))
      .raw("output_specs", harness::json_list(out_specs, spec_json))
      .raw("planned_buffer_bytes", planned_json).raw("backends", harness::json_list(backend_names, harness::json_str))
      .raw("backend_status", harness::json_list(backend_names, [](const std::string& n) {
        return JsonObject().str("backend", n).str("status", "registered and initialised").text();
      }))
      .integer("program_bytes", static_cast<long long>(loader.size().get()));
  if (harness::g_stop) r.str("interrupted", harness::signal_name(harness::g_stop)).boolean("partial", true);
  if (!harness::write_text_file(args.result, r.text() + "\n")) {
    harness::g_result = nullptr;
    fail("cannot write result " + args.result);
  }
  return harness::g_stop ? 128 + harness::g_stop : 0;
}

}  // namespace harness
