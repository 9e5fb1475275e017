// What the machine did to the runner while it timed: each thread's CPU time and the time it was runnable but waited
// for a CPU (/proc/self/task/*/schedstat: a worker that waited 40% of the run lacked a core), involuntary context
// switches and migrations per thread, and
// the whole machine's CPU steal and iowait from /proc/stat. Linux and Android alike; a file that cannot be read
// (SELinux, no CONFIG_SCHED_DEBUG) is left out, never an error. device_runners/python_runner.py writes the same.
#pragma once

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "json.h"

namespace harness {

struct ThreadSample {
  double cpu_s = 0;       // on a CPU: schedstat's run time (ns), else utime + stime (ticks)
  double wait_s = -1;     // runnable but waiting for a CPU (schedstat's run delay), -1 when unreadable
  long nivcsw = -1;       // nonvoluntary_ctxt_switches
  long migrations = -1;   // se.nr_migrations (CONFIG_SCHED_DEBUG), -1 when unreadable
};

struct MachineSample {
  long long total = -1, steal = 0, iowait = 0;
};

struct EvidenceSample {
  std::map<long, ThreadSample> threads;
  MachineSample machine;
};

inline std::string read_small(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return "";
  char buf[8192];
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  return std::string(buf, n);
}

inline long field_after(const std::string& text, const char* key) {
  size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  at = text.find_first_of("0123456789", at + std::strlen(key));
  return at == std::string::npos ? -1 : std::strtol(text.c_str() + at, nullptr, 10);
}

inline EvidenceSample sample_evidence() {
  EvidenceSample s;
  static const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::string base = std::string("/proc/self/task/") + e->d_name;
      std::string stat = read_small(base + "/stat");
      size_t paren = stat.rfind(')');
      if (paren == std::string::npos) continue;
      // after ") ": state is field 3; utime and stime are fields 14 and 15
      const char* p = stat.c_str() + paren + 2;
      unsigned long long utime = 0, stime = 0;
      if (std::sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) continue;
      ThreadSample t;
      t.cpu_s = (utime + stime) / hz;
      unsigned long long run_ns = 0, wait_ns = 0;
      if (std::sscanf(read_small(base + "/schedstat").c_str(), "%llu %llu", &run_ns, &wait_ns) == 2 &&
          (run_ns > 0 || wait_ns > 0)) {
        t.cpu_s = run_ns / 1e9;
        t.wait_s = wait_ns / 1e9;
      }
      t.nivcsw = field_after(read_small(base + "/status"), "nonvoluntary_ctxt_switches:");
      t.migrations = field_after(read_small(base + "/sched"), "se.nr_migrations");
      s.threads[std::strtol(e->d_name, nullptr, 10)] = t;
    }
    closedir(d);
  }
  std::string st = read_small("/proc/stat");
  long long v[10] = {0};
  if (std::sscanf(st.c_str(), "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &v[6], &v[7]) == 8) {
    s.machine.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    s.machine.iowait = v[4];
    s.machine.steal = v[7];
  }
  return s;
}

// The machine's speed, measured: a fixed chain of dependent multiply-adds (each waits for the one before, so no
// vector width or core count changes it: only the core's clock does), timed on this thread right before and right
// after the timed loop. Two runs of a campaign whose canaries differ ran on a machine whose clock differed (a cap,
// a host that moved the VM, a thermal limit), which no wait or steal figure shows. Nanoseconds per step, the best
// of three short tries (about 1 ms each at 3 GHz).
inline double canary_ns_per_step() {
  constexpr int kSteps = 1 << 18;
  static volatile double sink = 0;
  double best = 1e30;
  for (int attempt = 0; attempt < 3; ++attempt) {
    double x = 1.0 + attempt * 1e-9;
    const double a = 0.9999999, b = 1e-7;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kSteps; ++i) x = x * a + b;
    auto t1 = std::chrono::steady_clock::now();
    sink = x;
    double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kSteps;
    if (ns < best) best = ns;
  }
  return best;
}

// How far apart two of the run's CPUs are: two threads, pinned to the first two CPUs this process may use, pass a
// flag back and forth through one cache line; nanoseconds per round trip, the median of five batches of 500. On a
// cloud VM the hypervisor places the two vCPUs on nearby cores (one L3: ~60-110 ns on an EPYC) or on far ones
// (another CCD or socket: ~400-500 ns), and moves them every few seconds; a multi-threaded program whose threads meet
// at a barrier after every operator runs 10-35% slower while they are far apart, with no wait, steal or clock change
// to show for it (docs/statistics.md#far-cores). -1 when fewer than two CPUs are allowed (nothing to measure), -2
// when a batch took over 20 ms (the two threads did not run at once: a busy machine).
constexpr double kFarFactor = 2.0;  // harness/run/disturbance.py FAR_FACTOR: a round trip this many times the near level is far

inline double core_round_trip_ns() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  int cpus[2], n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < 2; ++c)
    if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
  if (n < 2) return -1;
  constexpr int kBatches = 5, kTrips = 500;
  alignas(64) static std::atomic<long> flag;
  std::atomic<bool> quit{false}, ready{false};
  flag.store(0);
  auto pin = [](int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;  // 0: the calling thread (Linux and Android alike)
  };
  std::thread echo([&] {  // answers each odd value with the next even one
    pin(cpus[1]);
    ready.store(true);
    long v = 1;
    while (!quit.load(std::memory_order_relaxed)) {
      if (flag.load(std::memory_order_acquire) == v) {
        flag.store(v + 1, std::memory_order_release);
        v += 2;
      }
    }
  });
  std::vector<double> ns;
  std::thread ping([&] {
    if (!pin(cpus[0])) return;
    while (!ready.load()) {
    }
    long x = 0;
    for (int b = 0; b < kBatches; ++b) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kTrips; ++i, x += 2) {
        flag.store(x + 1, std::memory_order_release);
        for (long spin = 0; flag.load(std::memory_order_acquire) != x + 2; ++spin) {
          if ((spin & 4095) == 4095 && std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(20)) return;
        }
      }
      ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kTrips);
    }
  });
  ping.join();
  quit.store(true);
  echo.join();
  if (ns.size() < kBatches) return -2;
  std::sort(ns.begin(), ns.end());
  return ns[kBatches / 2];
}

// {"wall_s", "threads": [{"tid", "cpu_s", "wait_s", "nivcsw", "migrations"}], "steal_share", "iowait_share",
//  "procs_running", "canary": {"before_ns", "after_ns"}, "cores": {"before_ns", "after_ns", "during": [[s, ns]]},
//  "settle": {"near_ns", "first_ns", "waited_s", "passed"}, "loadavg"}: the
//  differences between two samples taken around the timed loop, and the canary and the core round trip on either side
//  of it (the round trip only for a run of two or more threads).
inline std::string evidence_json(const EvidenceSample& a, const EvidenceSample& b, double wall_s,
                                 double canary_before = -1, double canary_after = -1,
                                 double cores_before = -1, double cores_after = -1,
                                 const std::string& settle_json = "",
                                 const std::vector<std::pair<double, double>>& cores_during = {}) {
  std::string threads = "[";
  bool first = true;
  for (const auto& [tid, tb] : b.threads) {
    auto it = a.threads.find(tid);
    if (it == a.threads.end()) continue;  // started after the timing began: not one of the timed threads
    const ThreadSample& ta = it->second;
    JsonObject t;
    t.integer("tid", tid).num("cpu_s", tb.cpu_s - ta.cpu_s);
    tb.wait_s >= 0 && ta.wait_s >= 0 ? t.num("wait_s", tb.wait_s - ta.wait_s) : t.null("wait_s");
    tb.nivcsw >= 0 && ta.nivcsw >= 0 ? t.integer("nivcsw", tb.nivcsw - ta.nivcsw) : t.null("nivcsw");
    tb.migrations >= 0 && ta.migrations >= 0 ? t.integer("migrations", tb.migrations - ta.migrations)
                                             : t.null("migrations");
    threads += (first ? "" : ", ") + t.text();
    first = false;
  }
  threads += "]";
  JsonObject o;
  o.num("wall_s", wall_s).raw("threads", threads);
  long long dt = b.machine.total - a.machine.total;
  if (a.machine.total >= 0 && b.machine.total >= 0 && dt > 0) {
    o.num("steal_share", static_cast<double>(b.machine.steal - a.machine.steal) / dt);
    o.num("iowait_share", static_cast<double>(b.machine.iowait - a.machine.iowait) / dt);
  } else {
    o.null("steal_share").null("iowait_share");
  }
  long running = field_after(read_small("/proc/stat"), "procs_running");
  running >= 0 ? o.integer("procs_running", running) : o.null("procs_running");
  if (canary_before > 0 && canary_after > 0) {
    JsonObject c;
    c.num("before_ns", canary_before).num("after_ns", canary_after);
    o.raw("canary", c.text());
  }
  if (cores_before != -1 || cores_after != -1) {  // probed (a failed probe is null)
    JsonObject c;
    cores_before > 0 ? c.num("before_ns", cores_before) : c.null("before_ns");
    cores_after > 0 ? c.num("after_ns", cores_after) : c.null("after_ns");
    std::string during = "[";
    for (size_t i = 0; i < cores_during.size(); ++i)
      during += (i ? ", [" : "[") + json_num(cores_during[i].first) + ", " + json_num(cores_during[i].second) + "]";
    c.raw("during", during + "]");
    o.raw("cores", c.text());
  }
  if (!settle_json.empty()) o.raw("settle", settle_json);
  std::string load = read_small("/proc/loadavg");
  o.str("loadavg", load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1)));
  return o.text();
}

}  // namespace harness
