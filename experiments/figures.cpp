#include "stn/experiments/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "stn/framework/io/atomic_file.h"
#include "stn/experiments/canvas.h"
#include "stn/framework/io/png.h"
#include "stn/layers/spatial_transformer.h"

namespace stn::cli {

using json = nlohmann::json;

json transformer_health(const Tape& tape, const Module& model) {
  json all = json::array();
  for (SpatialTransformer* st : find_transformers(model)) {
    const std::optional<SpatialTransformer::Result> last = st->result_on(tape);
    if (!last) continue;
    const Tensor& theta = last->theta.value();
    const Tensor& grid = last->sampling_grid.value();
    const TransformKind kind = st->options().kind;
    const std::vector<float> identity = identity_parameters(kind, st->options().tps_points);
    const std::size_t batch = theta.shape()[0], per = theta.size() / batch;
    double distance = 0.0, determinant_sum = 0.0, determinant_min = std::numeric_limits<double>::infinity();
    for (std::size_t n = 0; n < batch; ++n) {
      const float* t = theta.data() + n * per;
      double squared = 0.0;
      for (std::size_t k = 0; k < per; ++k) squared += (t[k] - identity[k]) * (t[k] - identity[k]);
      distance += std::sqrt(squared);
      if (kind == TransformKind::affine) {
        double det = static_cast<double>(t[0]) * t[4] - static_cast<double>(t[1]) * t[3];
        determinant_sum += det;
        determinant_min = std::min(determinant_min, det);
      }
    }
    std::size_t outside = 0;
    const std::size_t points = grid.size() / 2;
    for (std::size_t p = 0; p < points; ++p) {
      float x = grid.data()[2 * p], y = grid.data()[2 * p + 1];
      outside += !(x >= -1.0f && x <= 1.0f && y >= -1.0f && y <= 1.0f);
    }
    json h = {{"theta_distance", distance / static_cast<double>(batch)},
              {"outside_fraction", static_cast<double>(outside) / static_cast<double>(points)}};
    if (kind == TransformKind::affine) {
      h["det_mean"] = determinant_sum / static_cast<double>(batch);
      h["det_min"] = determinant_min;
    }
    all.push_back(h);
  }
  return all;
}

namespace {

// The input as one grey plane: the maximum over channels (MNIST addition has two digits).
std::vector<float> grey_plane(const Tensor& images, std::size_t n) {
  const std::size_t c = images.shape()[1], h = images.shape()[2], w = images.shape()[3];
  std::vector<float> plane(h * w, 0.0f);
  for (std::size_t k = 0; k < c; ++k)
    for (std::size_t i = 0; i < h * w; ++i)
      plane[i] = std::max(plane[i], images.data()[(n * c + k) * h * w + i]);
  return plane;
}

// The sampling grid's outline (its border points in order) in input pixel units.
std::vector<std::pair<float, float>> grid_outline(const Tensor& grid, std::size_t n, std::size_t input_h,
                                                  std::size_t input_w, bool align_corners) {
  const std::size_t gh = grid.shape()[1], gw = grid.shape()[2];
  auto point = [&](std::size_t i, std::size_t j) {
    const float* g = grid.data() + ((n * gh + i) * gw + j) * 2;
    auto to_pixel = [&](float v, std::size_t size) {
      return align_corners ? (v + 1.0f) * 0.5f * (static_cast<float>(size) - 1.0f)
                           : ((v + 1.0f) * static_cast<float>(size) - 1.0f) * 0.5f;
    };
    return std::pair{to_pixel(g[0], input_w), to_pixel(g[1], input_h)};
  };
  std::vector<std::pair<float, float>> outline;
  for (std::size_t j = 0; j < gw; ++j) outline.push_back(point(0, j));
  for (std::size_t i = 1; i < gh; ++i) outline.push_back(point(i, gw - 1));
  for (std::size_t j = gw - 1; j-- > 0;) outline.push_back(point(gh - 1, j));
  for (std::size_t i = gh - 1; i-- > 1;) outline.push_back(point(i, 0));
  return outline;
}

// A tic step of 1, 2 or 5 times a power of ten that cuts [0, range] into at most five
// intervals: gnuplot's own choice runs the labels of a 150k-iteration run into each other.
double iteration_tic_step(double range) {
  const double wanted = std::max(range, 5.0) / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(wanted)));
  for (double factor : {1.0, 2.0, 5.0})
    if (factor * magnitude >= wanted) return factor * magnitude;
  return 10.0 * magnitude;
}

}  // namespace

bool write_transformer_figure(Module& model, const Dataset& test, std::size_t count, const std::string& path) {
  std::vector<SpatialTransformer*> transformers = find_transformers(model);
  if (transformers.empty() || test.size() == 0) return false;
  count = std::min(count, test.size());
  const std::size_t c = test.images.shape()[1], h = test.images.shape()[2], w = test.images.shape()[3];
  Tensor images = empty({count, c, h, w});
  std::copy(test.images.data(), test.images.data() + images.size(), images.data());

  const bool was_training = model.is_training();
  model.eval();
  Tape tape;
  NoGradScope no_grad(tape);
  model.forward(tape.input(images));
  model.train(was_training);
  std::vector<SpatialTransformer::Result> results;
  for (SpatialTransformer* st : transformers) {
    std::optional<SpatialTransformer::Result> result = st->result_on(tape);
    if (!result) throw std::logic_error("transformer figure: a transformer of the model did not run in its forward");
    results.push_back(*result);
  }

  // Every panel about 160 px wide, with integer nearest-neighbour scaling.
  const int scale = std::max(1, 160 / static_cast<int>(std::max(h, w)));
  int cell = static_cast<int>(std::max(h, w)) * scale + 8;
  for (SpatialTransformer* st : transformers) {
    const int side = static_cast<int>(std::max(st->options().output_height, st->options().output_width));
    cell = std::max(cell, side * std::max(1, 160 / side) + 8);
  }
  int columns = 2;
  for (const SpatialTransformer::Result& result : results) columns += static_cast<int>(result.output.dim(1));
  // The sampling boxes in input pixels. A transformer that zooms out samples beyond the input
  // (zeros there): the middle panel then shows the input smaller, centred in a view up to
  // twice its size, so that the boxes fit; what lies beyond that is cut at the panel's edge.
  std::vector<std::vector<std::vector<std::pair<float, float>>>> outlines(count);
  const float centre_x = (static_cast<float>(w) - 1.0f) / 2.0f, centre_y = (static_cast<float>(h) - 1.0f) / 2.0f;
  const float input_half = static_cast<float>(std::max(h, w)) / 2.0f;
  float half = input_half;
  for (std::size_t n = 0; n < count; ++n)
    for (std::size_t t = 0; t < transformers.size(); ++t) {
      outlines[n].push_back(grid_outline(results[t].sampling_grid.value(), n, h, w,
                                         transformers[t]->options().sampler.align_corners));
      for (const auto& [x, y] : outlines[n].back())
        if (std::isfinite(x) && std::isfinite(y))
          half = std::max({half, std::abs(x - centre_x) + 0.5f, std::abs(y - centre_y) + 0.5f});
    }
  half = std::min(half, 2.0f * input_half);
  const int box_scale = std::max(1, static_cast<int>(static_cast<float>(cell - 8) / (2.0f * half)));
  const int panel_left = 8 + cell;  // the middle column
  const int box_left = panel_left + (cell - 8 - static_cast<int>(w) * box_scale) / 2;
  const int box_top = (cell - 8 - static_cast<int>(h) * box_scale) / 2;

  Canvas canvas(columns * cell + 8, static_cast<int>(count) * cell + 8, Rgb{40, 40, 40});
  const Rgb box_colours[] = {{255, 80, 60}, {60, 200, 255}, {120, 255, 90}, {255, 220, 60}};
  for (std::size_t n = 0; n < count; ++n) {
    const int y0 = 8 + static_cast<int>(n) * cell;
    std::vector<float> plane = grey_plane(images, n);
    canvas.paste_gray(plane.data(), static_cast<int>(h), static_cast<int>(w), 8, y0, scale, 0.0f, 1.0f);
    canvas.paste_gray(plane.data(), static_cast<int>(h), static_cast<int>(w), box_left, y0 + box_top, box_scale,
                      0.0f, 1.0f);
    int column = 2;
    for (std::size_t t = 0; t < transformers.size(); ++t) {
      std::vector<std::pair<float, float>>& outline = outlines[n][t];
      for (auto& [x, y] : outline) {
        x = static_cast<float>(box_left) + (x + 0.5f) * static_cast<float>(box_scale);
        y = static_cast<float>(y0 + box_top) + (y + 0.5f) * static_cast<float>(box_scale);
      }
      // Cut at the middle of the gaps around the panel: never over the outputs beside it.
      canvas.draw_polygon(outline, box_colours[t % 4], true,
                          Box{panel_left - 4, y0 - 4, panel_left + cell - 5, y0 + cell - 5});
      const Tensor& out = results[t].output.value();
      const std::size_t oc = out.shape()[1], oh = out.shape()[2], ow = out.shape()[3];
      const int out_scale = std::max(1, 160 / static_cast<int>(std::max(oh, ow)));
      for (std::size_t k = 0; k < oc; ++k, ++column)
        canvas.paste_gray(out.data() + (n * oc + k) * oh * ow, static_cast<int>(oh), static_cast<int>(ow),
                          8 + column * cell, y0, out_scale, 0.0f, 1.0f);
    }
  }
  canvas.save_png(path);
  return true;
}

namespace {

// Runs `gnuplot SCRIPT` in `directory` (no shell: the arguments go to execve as they are)
// and returns its exit status; -1 when gnuplot is not installed. The last lines gnuplot
// wrote to stderr go into `messages`.
int run_gnuplot(const std::string& directory, const std::string& script, std::string& messages) {
  int pipe_ends[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0) throw std::runtime_error(std::string("cannot create a pipe for gnuplot: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, directory.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);  // stn ignores it; gnuplot should not inherit that
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
  std::string program = "gnuplot", argument = script;
  char* argv[] = {program.data(), argument.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_ends[1]);
  if (spawned != 0) {
    ::close(pipe_ends[0]);
    if (spawned == ENOENT) return -1;
    throw std::runtime_error(std::string("cannot run gnuplot: ") + std::strerror(spawned));
  }
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(pipe_ends[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    messages.append(buffer, static_cast<std::size_t>(n));
    if (messages.size() > 16384) messages.erase(0, messages.size() - 4096);
  }
  ::close(pipe_ends[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("cannot wait for gnuplot: ") + std::strerror(errno));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const std::size_t newline = text.find_last_of('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

}  // namespace

bool write_training_curves(const std::string& run_dir) {
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  std::istringstream metrics(read_file(metrics_path));
  std::ostringstream loss_data, error_data;
  std::string line;
  double last_iteration = 0.0;
  std::string error_name = "test";  // a --validation run plots its validation error
  while (std::getline(metrics, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("iter") || !j["iter"].is_number()) continue;
    last_iteration = std::max(last_iteration, j["iter"].get<double>());
    if (j.contains("loss")) loss_data << j["iter"] << " " << j["loss"] << "\n";
    if (j.contains("test_error")) error_data << j["iter"] << " " << j["test_error"] << "\n";
    if (j.contains("validation_error")) {
      error_name = "validation";
      error_data << j["iter"] << " " << j["validation_error"] << "\n";
    }
  }
  write_file_atomically(run_dir + "/curves_loss.dat", loss_data.str());
  write_file_atomically(run_dir + "/curves_error.dat", error_data.str());
  // gnuplot runs in the run directory, so the script names no path a user chose: a quote in
  // --out cannot end a gnuplot string (gnuplot has system() too). It draws into a temporary
  // file that is checked and then moved over curves.png.
  const std::string temporary = ".curves.png.tmp-" + std::to_string(::getpid()) + "-0";
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,420 noenhanced\n"
     << "set output '" << temporary << "'\n"
     << "set multiplot layout 1,2\n"
     << "set xlabel 'iteration'\nset xtics " << iteration_tic_step(last_iteration) << "\n"
     << "set grid\nset ylabel 'training loss'\nset logscale y\n"
     << "plot 'curves_loss.dat' using 1:2 with lines lw 2 title 'loss'\n"
     << "unset logscale y\nset ylabel '" << error_name << " error (%)'\n"
     << "plot 'curves_error.dat' using 1:2 with linespoints lw 2 pt 7 title '" << error_name << " error'\n"
     << "unset multiplot\nset output\n";
  write_file_atomically(run_dir + "/curves.gp", gp.str());
  const std::string temporary_path = run_dir + "/" + temporary;
  struct Remove {
    const std::string& path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove_temporary{temporary_path};
  std::string messages;
  const int status = run_gnuplot(run_dir, "curves.gp", messages);
  if (status == -1) {
    std::fprintf(stderr, "note: curves.png not drawn: gnuplot is not installed (the data is in %s/curves_*.dat)\n",
                 run_dir.c_str());
    return false;
  }
  const std::string png_path = run_dir + "/curves.png";
  if (status != 0)
    throw std::runtime_error(png_path + ": gnuplot failed (exit status " + std::to_string(status) + ")" +
                             (messages.empty() ? "" : ": " + last_line(messages)));
  // gnuplot's cairo terminal does not report a failed write: check that a whole PNG came out.
  std::string bytes;
  try {
    bytes = read_file(temporary_path);
    read_image(temporary_path);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    if (reason.rfind(temporary_path + ": ", 0) == 0) reason.erase(0, temporary_path.size() + 2);
    throw std::runtime_error(png_path + ": gnuplot exited 0 but wrote no complete PNG (" + reason + ")" +
                             (messages.empty() ? "" : "; gnuplot said: " + last_line(messages)));
  }
  write_file_atomically(png_path, bytes);
  return true;
}

}  // namespace stn::cli
