// Driver for the public EbSynth engine (github.com/jamriska/ebsynth), used only by
// scripts/bench_ebsynth.sh to compare it with `rotograph propagate`. Our own code: it reads raw
// RGB files instead of PNGs (the engine's CLI needs stb_image, which the benchmark does not
// fetch) and calls the engine's CPU backend, ebsynthRunCpu (src/ebsynth_cpu.h), which is what
// the public ebsynthRun(EBSYNTH_BACKEND_CPU, ...) of include/ebsynth.h dispatches to.
//
//   ebsynth_driver W H STYLE.rgb GUIDE_SRC.rgb GUIDE_TGT.rgb OUT.rgb [options]
//
// All images are raw 8-bit RGB, W*H*3 bytes, scan-line order, same size. Options and their
// defaults are those of the engine's own CLI (src/ebsynth.cpp, main):
//   -patchsize 5  -uniformity 3500  -searchvoteiters 6  -patchmatchiters 4  -stopthreshold 5
//   -pyramidlevels auto  -styleweight 1  -guideweight 1 (one guide: 1/number of guides)
// Like the CLI, each weight is split evenly over its image's channels, an image whose pixels
// are all grey counts as one channel, the pyramid gets the most levels whose coarsest image
// still holds 2*patch+1 pixels (a requested count is capped there), and votes are plain
// (EBSYNTH_VOTEMODE_PLAIN). -extrapass3x3 needs a CPU backend that takes the extraPass3x3
// argument (upstream's current one); build with -DEBSYNTH_CPU_EXTRA_PASS for it (the benchmark
// script does when src/ebsynth_cpu.h declares it). Older copies lack it; the driver then
// refuses the option. `ebsynth_driver --has-extra-pass` exits 0 when it was built with it.
#include "ebsynth.h"
#include "ebsynth_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static bool read_raw(const char* path, std::vector<unsigned char>& buf) {
  FILE* f = std::fopen(path, "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", path);
    return false;
  }
  const size_t got = std::fread(buf.data(), 1, buf.size(), f);
  const bool extra = std::fgetc(f) != EOF;
  std::fclose(f);
  if (got != buf.size() || extra) {
    std::fprintf(stderr, "%s: expected exactly %zu bytes (W*H*3)\n", path, buf.size());
    return false;
  }
  return true;
}

// True when every pixel has r == g == b (the CLI then uses one channel).
static bool all_grey(const std::vector<unsigned char>& rgb) {
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    if (rgb[i] != rgb[i + 1] || rgb[i + 1] != rgb[i + 2]) return false;
  }
  return true;
}

// Keeps the first `channels` (1 or 3) of each RGB pixel.
static std::vector<unsigned char> take_channels(const std::vector<unsigned char>& rgb, int channels) {
  if (channels == 3) return rgb;
  std::vector<unsigned char> out(rgb.size() / 3);
  for (size_t i = 0; i < out.size(); i++) out[i] = rgb[3 * i];
  return out;
}

int main(int argc, char** argv) {
#ifdef EBSYNTH_CPU_EXTRA_PASS
  const bool has_extra_pass = true;
#else
  const bool has_extra_pass = false;
#endif
  if (argc == 2 && std::string(argv[1]) == "--has-extra-pass") return has_extra_pass ? 0 : 1;
  if (argc < 7) {
    std::fprintf(stderr,
                 "usage: %s W H STYLE.rgb GUIDE_SRC.rgb GUIDE_TGT.rgb OUT.rgb [-patchsize N] "
                 "[-uniformity U] [-searchvoteiters N] [-patchmatchiters N] [-stopthreshold N] "
                 "[-pyramidlevels N] [-styleweight W] [-guideweight W] [-extrapass3x3]\n",
                 argv[0]);
    return 2;
  }
  const int w = std::atoi(argv[1]);
  const int h = std::atoi(argv[2]);
  int patch = 5, search_vote = 6, pm_iters = 4, stop = 5, levels_req = -1;
  float uniformity = 3500.0f, style_weight = 1.0f, guide_weight = 1.0f;
  int extra_pass = 0;
  for (int i = 7; i < argc; i++) {
    const std::string opt = argv[i];
    if (opt == "-extrapass3x3") {
      if (!has_extra_pass) {
        std::fprintf(stderr, "-extrapass3x3: this engine source's CPU backend has no extra pass\n");
        return 2;
      }
      extra_pass = 1;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", opt.c_str());
      return 2;
    }
    const char* v = argv[++i];
    if (opt == "-patchsize") patch = std::atoi(v);
    else if (opt == "-uniformity") uniformity = float(std::atof(v));
    else if (opt == "-searchvoteiters") search_vote = std::atoi(v);
    else if (opt == "-patchmatchiters") pm_iters = std::atoi(v);
    else if (opt == "-stopthreshold") stop = std::atoi(v);
    else if (opt == "-pyramidlevels") levels_req = std::atoi(v);
    else if (opt == "-styleweight") style_weight = float(std::atof(v));
    else if (opt == "-guideweight") guide_weight = float(std::atof(v));
    else {
      std::fprintf(stderr, "unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (w <= 0 || h <= 0 || patch < 3 || patch % 2 == 0 || search_vote < 0 || pm_iters < 0 ||
      stop < 0 || levels_req == 0 || levels_req < -1) {
    std::fprintf(stderr, "bad size %dx%d or settings (patch odd >= 3, counts >= 0, levels >= 1)\n", w, h, patch);
    return 2;
  }
  const size_t n = size_t(w) * size_t(h) * 3;
  std::vector<unsigned char> style_rgb(n), gsrc_rgb(n), gtgt_rgb(n);
  if (!read_raw(argv[3], style_rgb) || !read_raw(argv[4], gsrc_rgb) || !read_raw(argv[5], gtgt_rgb)) return 1;

  const int style_ch = all_grey(style_rgb) ? 1 : 3;
  const int guide_ch = (all_grey(gsrc_rgb) && all_grey(gtgt_rgb)) ? 1 : 3;
  std::vector<unsigned char> style = take_channels(style_rgb, style_ch);
  std::vector<unsigned char> gsrc = take_channels(gsrc_rgb, guide_ch);
  std::vector<unsigned char> gtgt = take_channels(gtgt_rgb, guide_ch);

  // The CLI's rule: level l (0 = finest) has size floor(size * 2^-l) in float arithmetic;
  // the pyramid gets l+1 levels for the largest l whose smaller side is >= 2*patch+1.
  int max_levels = 0;
  for (int level = 32; level >= 0; level--) {
    const float s = std::pow(2.0f, -float(level));
    const int lw = int(float(w) * s), lh = int(float(h) * s);
    if (std::min(lw, lh) >= 2 * patch + 1) {
      max_levels = level + 1;
      break;
    }
  }
  if (max_levels == 0) {
    std::fprintf(stderr, "image %dx%d is smaller than one %d px pyramid window\n", w, h, 2 * patch + 1);
    return 2;
  }
  const int levels = levels_req == -1 ? max_levels : std::min(levels_req, max_levels);
  std::vector<int> sv(levels, search_vote), pm(levels, pm_iters), stops(levels, stop);
  std::vector<float> style_w(style_ch, style_weight / float(style_ch));
  std::vector<float> guide_w(guide_ch, guide_weight / float(guide_ch));
  std::vector<unsigned char> out(size_t(w) * size_t(h) * style_ch);

  std::fprintf(stderr, "ebsynth cpu: %dx%d, patch %d, uniformity %.0f, levels %d, search-vote %d, patchmatch %d, stop %d, style %d ch x %.3f, guide %d ch x %.3f, extra pass %d\n",
               w, h, patch, uniformity, levels, search_vote, pm_iters, stop, style_ch, style_w[0], guide_ch, guide_w[0],
               extra_pass);

#ifdef EBSYNTH_CPU_EXTRA_PASS
  ebsynthRunCpu(style_ch, guide_ch, w, h, style.data(), gsrc.data(), w, h, gtgt.data(), nullptr,
                style_w.data(), guide_w.data(), uniformity, patch, EBSYNTH_VOTEMODE_PLAIN, levels,
                sv.data(), pm.data(), stops.data(), extra_pass, nullptr, out.data());
#else
  ebsynthRunCpu(style_ch, guide_ch, w, h, style.data(), gsrc.data(), w, h, gtgt.data(), nullptr,
                style_w.data(), guide_w.data(), uniformity, patch, EBSYNTH_VOTEMODE_PLAIN, levels,
                sv.data(), pm.data(), stops.data(), nullptr, out.data());
#endif

  std::vector<unsigned char> out_rgb(n);
  for (size_t i = 0; i < size_t(w) * size_t(h); i++) {
    for (int c = 0; c < 3; c++) out_rgb[3 * i + c] = out[i * style_ch + (style_ch == 3 ? c : 0)];
  }
  FILE* f = std::fopen(argv[6], "wb");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", argv[6]);
    return 1;
  }
  const bool ok = std::fwrite(out_rgb.data(), 1, n, f) == n;
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "cannot write %s\n", argv[6]);
    return 1;
  }
  return 0;
}
