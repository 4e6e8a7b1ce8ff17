// Minimal driver for the public EbSynth engine (jamriska/ebsynth), used only by
// scripts/bench_ebsynth.sh to compare it with `rotograph propagate`. It is our own
// code and calls nothing but the public `ebsynthRun` entry point of include/ebsynth.h.
//
// Usage: ebsynth_driver W H STYLE.rgb GUIDE_SRC.rgb GUIDE_TGT.rgb OUT.rgb [patch uniformity searchvote pm]
// All images are raw 8-bit RGB, W*H*3 bytes, scan-line order, same size.
// Defaults mirror the engine's own CLI defaults (patch 5, uniformity 3500, 6 search/vote
// and 4 PatchMatch iterations per level, weighted voting, stop threshold 5, style weight 1
// and guide weight 1 split evenly over channels, pyramid levels chosen automatically).
// NOTE: not yet run against the real engine; verify the defaults against its src/ebsynth.cpp.
#include "ebsynth.h"

// Older copies of ebsynth.h name only the CUDA backend; any other value selects the CPU path.
#ifndef EBSYNTH_BACKEND_CPU
#define EBSYNTH_BACKEND_CPU 0x0001
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

static bool read_raw(const char* path, std::vector<unsigned char>& buf) {
  FILE* f = std::fopen(path, "rb");
  if (!f) { std::fprintf(stderr, "cannot open %s\n", path); return false; }
  const size_t got = std::fread(buf.data(), 1, buf.size(), f);
  std::fclose(f);
  if (got != buf.size()) { std::fprintf(stderr, "%s: expected %zu bytes, got %zu\n", path, buf.size(), got); return false; }
  return true;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s W H STYLE.rgb GUIDE_SRC.rgb GUIDE_TGT.rgb OUT.rgb [patch uniformity searchvote pm]\n", argv[0]);
    return 2;
  }
  const int w = std::atoi(argv[1]);
  const int h = std::atoi(argv[2]);
  const int patch = argc > 7 ? std::atoi(argv[7]) : 5;
  const float uniformity = argc > 8 ? float(std::atof(argv[8])) : 3500.0f;
  const int search_vote = argc > 9 ? std::atoi(argv[9]) : 6;
  const int pm_iters = argc > 10 ? std::atoi(argv[10]) : 4;
  if (w <= 0 || h <= 0 || patch < 3 || patch % 2 == 0) {
    std::fprintf(stderr, "bad size %dx%d or patch %d (odd, >= 3)\n", w, h, patch);
    return 2;
  }
  const size_t n = size_t(w) * size_t(h) * 3;
  std::vector<unsigned char> style(n), gsrc(n), gtgt(n), out(n);
  if (!read_raw(argv[3], style) || !read_raw(argv[4], gsrc) || !read_raw(argv[5], gtgt)) return 1;

  // Automatic pyramid depth: the coarsest level must still hold a 2*patch+1 window.
  int levels = 1;
  for (int l = 32; l >= 1; l--) {
    const float s = std::pow(2.0f, -float(l - 1));
    if (int(float(std::min(w, h)) * s) >= 2 * patch + 1) { levels = l; break; }
  }
  std::vector<int> sv(levels, search_vote), pm(levels, pm_iters), stop(levels, 5);
  float style_w[3] = {1.0f / 3, 1.0f / 3, 1.0f / 3};
  float guide_w[3] = {1.0f / 3, 1.0f / 3, 1.0f / 3};

  ebsynthRun(EBSYNTH_BACKEND_CPU, 3, 3, w, h, style.data(), gsrc.data(), w, h, gtgt.data(), nullptr,
             style_w, guide_w, uniformity, patch, EBSYNTH_VOTEMODE_WEIGHTED, levels, sv.data(), pm.data(),
             stop.data(), out.data());

  FILE* f = std::fopen(argv[6], "wb");
  if (!f || std::fwrite(out.data(), 1, n, f) != n) { std::fprintf(stderr, "cannot write %s\n", argv[6]); return 1; }
  std::fclose(f);
  return 0;
}
