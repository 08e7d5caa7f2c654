#include "experiments/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "framework/io/png.h"
#include "layers/spatial_transformer.h"

namespace stn::cli {

using json = nlohmann::json;

json transformer_health(const Module& model) {
  json all = json::array();
  for (SpatialTransformer* st : find_transformers(model)) {
    const SpatialTransformer::Result& last = st->last();
    if (!last.theta.valid()) continue;
    const Tensor& theta = last.theta.value();
    const Tensor& grid = last.sampling_grid.value();
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

  // Every panel about 160 px wide, with integer nearest-neighbour scaling.
  const int scale = std::max(1, 160 / static_cast<int>(std::max(h, w)));
  int cell = static_cast<int>(std::max(h, w)) * scale + 8;
  for (SpatialTransformer* st : transformers) {
    const int side = static_cast<int>(std::max(st->options().output_height, st->options().output_width));
    cell = std::max(cell, side * std::max(1, 160 / side) + 8);
  }
  int columns = 2;
  for (SpatialTransformer* st : transformers) columns += static_cast<int>(st->last().output.dim(1));
  Canvas canvas(columns * cell + 8, static_cast<int>(count) * cell + 8, Rgb{40, 40, 40});
  const Rgb box_colours[] = {{255, 80, 60}, {60, 200, 255}, {120, 255, 90}, {255, 220, 60}};
  for (std::size_t n = 0; n < count; ++n) {
    const int y0 = 8 + static_cast<int>(n) * cell;
    std::vector<float> plane = grey_plane(images, n);
    canvas.paste_gray(plane.data(), static_cast<int>(h), static_cast<int>(w), 8, y0, scale, 0.0f, 1.0f);
    canvas.paste_gray(plane.data(), static_cast<int>(h), static_cast<int>(w), 8 + cell, y0, scale, 0.0f, 1.0f);
    int column = 2;
    for (std::size_t t = 0; t < transformers.size(); ++t) {
      const SpatialTransformer::Result& last = transformers[t]->last();
      std::vector<std::pair<float, float>> outline =
          grid_outline(last.sampling_grid.value(), n, h, w, transformers[t]->options().sampler.align_corners);
      for (auto& [x, y] : outline) {
        x = 8.0f + static_cast<float>(cell) + (x + 0.5f) * static_cast<float>(scale);
        y = static_cast<float>(y0) + (y + 0.5f) * static_cast<float>(scale);
      }
      canvas.draw_polygon(outline, box_colours[t % 4], true);
      const Tensor& out = last.output.value();
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

bool write_training_curves(const std::string& run_dir) {
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  if (!metrics) return false;
  std::ofstream loss_data(run_dir + "/curves_loss.dat"), error_data(run_dir + "/curves_error.dat");
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
  loss_data.close();
  error_data.close();
  const std::string script = run_dir + "/curves.gp";
  std::ofstream gp(script);
  gp << "set terminal pngcairo size 900,420 noenhanced\n"
     << "set output '" << run_dir << "/curves.png'\n"
     << "set multiplot layout 1,2\n"
     << "set xlabel 'iteration'\nset xtics " << iteration_tic_step(last_iteration) << "\n"
     << "set grid\nset ylabel 'training loss'\nset logscale y\n"
     << "plot '" << run_dir << "/curves_loss.dat' using 1:2 with lines lw 2 title 'loss'\n"
     << "unset logscale y\nset ylabel '" << error_name << " error (%)'\n"
     << "plot '" << run_dir << "/curves_error.dat' using 1:2 with linespoints lw 2 pt 7 title '" << error_name
     << " error'\n"
     << "unset multiplot\n";
  gp.close();
  const std::string command = "gnuplot '" + script + "' 2>/dev/null";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "note: curves.png not drawn (gnuplot missing or failed; data in %s/curves_*.dat)\n",
                 run_dir.c_str());
    return false;
  }
  return true;
}

}  // namespace stn::cli
