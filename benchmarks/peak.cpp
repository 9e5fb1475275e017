// This CPU's measured peak: fp32 fused multiply-adds and (where the CPU has VNNI) int8 dot products, on 1..N
// threads. Independent accumulators (more than the FMA latency x units) keep every FMA unit busy, so the rate is
// the core's throughput at whatever clock it runs now: no clock or vector width is assumed. Built by peak.py with
// -O3 -march=native; prints one JSON object.
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
typedef float vf __attribute__((vector_size(64)));
constexpr int kLanes = 16;
#elif defined(__AVX__)
typedef float vf __attribute__((vector_size(32)));
constexpr int kLanes = 8;
#else
typedef float vf __attribute__((vector_size(16)));
constexpr int kLanes = 4;
#endif

constexpr int kAcc = 12;  // independent chains: latency 4-5 cycles x 2 units needs at least 10

// Twelve named accumulators (an array would live on the stack and chain through store-to-load forwarding).
#define ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) vf c##i = vf{} + 1.0f + i * 1e-3f;
#define STEP(i) c##i = c##i * a + b; __asm__ volatile("" : "+v"(c##i));
#define SUM(i) sink += c##i[0];

static double fma_flop(long iters) {
  ACC12(DECLARE)
  vf a = vf{} + 0.999999f, b = vf{} + 1e-6f;
  for (long n = 0; n < iters; ++n) {
    ACC12(STEP)
  }
  float sink = 0;
  ACC12(SUM)
  if (sink == 12345.f) std::puts("");
  return 2.0 * kLanes * kAcc * static_cast<double>(iters);
}

#if defined(__AVX512VNNI__) || defined(__AVXVNNI__)
static double vnni_ops(long iters) {
#if defined(__AVX512VNNI__)
  typedef __m512i vi;
#define VDECL(i) vi c##i = _mm512_setzero_si512();
#define VSTEP(i) c##i = _mm512_dpbusd_epi32(c##i, a, b); __asm__ volatile("" : "+v"(c##i));
#define VSUM(i) sink += _mm512_reduce_add_epi32(c##i);
  vi a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
  constexpr int kBytes = 64;
#else
  typedef __m256i vi;
#define VDECL(i) vi c##i = _mm256_setzero_si256();
#define VSTEP(i) c##i = _mm256_dpbusd_avx_epi32(c##i, a, b); __asm__ volatile("" : "+v"(c##i));
#define VSUM(i) sink += _mm256_extract_epi32(c##i, 0);
  vi a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2);
  constexpr int kBytes = 32;
#endif
  ACC12(VDECL)
  for (long n = 0; n < iters; ++n) {
    ACC12(VSTEP)
  }
  long long sink = 0;
  ACC12(VSUM)
  if (sink == 12345) std::puts("");
  return 2.0 * kBytes * kAcc * static_cast<double>(iters);  // one multiply and one add per int8 pair
}
#endif

// Operations per second of `work` on `threads` threads at once, best of five tries: the peak is what the cores can
// do, not what a neighbour left them.
static double rate(double (*work)(long), int threads, long iters) {
  double best = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<std::thread> pool;
    std::vector<double> ops(threads, 0.0);
    auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { ops[t] = work(iters); });
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double total = 0;
    for (double o : ops) total += o;
    if (total / s > best) best = total / s;
  }
  return best;
}

int main(int argc, char** argv) {
  int max_threads = argc > 1 ? std::atoi(argv[1]) : 1;
  long iters = argc > 2 ? std::atol(argv[2]) : 20'000'000;
  std::printf("{\"lanes\": %d, \"fp32_gflops\": [", kLanes);
  for (int t = 1; t <= max_threads; ++t) std::printf("%s%.2f", t > 1 ? ", " : "", rate(fma_flop, t, iters) / 1e9);
  std::printf("], \"int8_vnni_gops\": ");
#if defined(__AVX512VNNI__) || defined(__AVXVNNI__)
  std::printf("[");
  for (int t = 1; t <= max_threads; ++t) std::printf("%s%.2f", t > 1 ? ", " : "", rate(vnni_ops, t, iters) / 1e9);
  std::printf("]");
#else
  std::printf("null");
#endif
  std::printf("}\n");
  return 0;
}
