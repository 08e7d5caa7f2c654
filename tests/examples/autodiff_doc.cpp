// The printouts and code of docs/autodiff.md, regenerated.
//
//   autodiff_doc                          prints every printout
//   autodiff_doc --check DOC SOURCE       exit 1 unless DOC holds each printout and each
//                                         code block of SOURCE (this file) verbatim
//   autodiff_doc --update DOC SOURCE      rewrites those blocks of DOC in place
//
// In the doc a printout is "<!-- printout: NAME -->" followed by a ```text block, a code
// block "<!-- code: NAME -->" followed by a ```cpp block; in this file a code block sits
// between "// [doc: NAME]" and "// [end]" lines.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "stn/framework/ops.h"
#include "stn/framework/optim/optimizer.h"
#include "stn/layers/layers.h"
#include "stn/layers/spatial_transformer.h"

namespace {

// An ST-CNN built like models/ (localisation CNN, affine transformer starting at the
// identity, classifier CNN: conv -> max-pool -> ReLU -> linear), only narrow and on 12x12
// images, so that its tape prints in a screenful.
std::shared_ptr<stn::Sequential> tiny_st_cnn(stn::Generator& g) {
  using namespace stn;
  auto localisation = std::make_shared<Sequential>();
  localisation->add("conv", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = 1, .out = 2, .kernel = 3}, g));
  localisation->add("pool", std::make_shared<MaxPool2d>(Pool2dOptions{.kernel = 2}));
  localisation->add("relu", std::make_shared<ReLU>());
  localisation->add("flatten", std::make_shared<Flatten>());
  localisation->add("fc", std::make_shared<Linear>(LinearOptions{.in = 50, .out = 8}, g));
  localisation->add("relu2", std::make_shared<ReLU>());
  auto model = std::make_shared<Sequential>();
  model->add("st", std::make_shared<SpatialTransformer>(
                       localisation, SpatialTransformerOptions{.kind = TransformKind::affine,
                                                               .output_height = 12, .output_width = 12,
                                                               .localisation_features = 8},
                       g));
  model->add("conv", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = 1, .out = 3, .kernel = 3}, g));
  model->add("pool", std::make_shared<MaxPool2d>(Pool2dOptions{.kernel = 2}));
  model->add("relu", std::make_shared<ReLU>());
  model->add("flatten", std::make_shared<Flatten>());
  model->add("fc", std::make_shared<Linear>(LinearOptions{.in = 75, .out = 4}, g));
  return model;
}

// Two 12x12 "digits": a vertical bar and a ring.
stn::Tensor two_images() {
  stn::Tensor images = stn::zeros({2, 1, 12, 12});
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 12; ++x) {
      const float r = std::hypot(y - 5.5f, x - 5.5f);
      images(0, 0, y, x) = (x >= 5 && x <= 6 && y >= 2 && y <= 9) ? 1.0f : 0.0f;
      images(1, 0, y, x) = std::max(0.0f, 1.0f - std::abs(r - 3.5f));
    }
  return images;
}

std::string training_step() {
  stn::Generator generator(3);
  auto model = tiny_st_cnn(generator);
  stn::SGD optimizer({{model->parameters()}}, {.learning_rate = 0.05f});
  const stn::Tensor images = two_images();
  const std::vector<std::int32_t> labels = {1, 0};
  // [doc: training-step]
  stn::Tape tape;
  for (int step = 0; step < 2; ++step) {
    stn::Var x = tape.input(images);  // no gradient: nothing is computed for the image
    stn::Var loss = stn::cross_entropy(model->forward(x), labels);
    tape.backward(loss);              // into each Parameter::grad
    if (step == 1) std::cout << tape.to_string();
    optimizer.step();
    optimizer.zero_grad();
    tape.clear();
  }
  // [end]
  return "";
}

std::string cube() {
  std::ostringstream out;
  // [doc: cube]
  stn::Tape tape;
  stn::Var x = tape.input(stn::full({1}, 2.0f), true);
  stn::Var y = stn::sum(x * x * x);
  stn::Var dy = stn::grad(y, {x}, {.create_graph = true})[0];  // 3 x^2 = 12, as a Var
  stn::Var d2y = stn::grad(dy, {x})[0];                         // 6 x = 12, a constant
  // [end]
  out << "dy = " << dy.value()(0) << ", d2y = " << d2y.value()(0) << "\n" << tape.to_string();
  return out.str();
}

std::string gradient_penalty() {
  stn::Generator generator(3);
  auto model = tiny_st_cnn(generator);
  const stn::Tensor images = two_images();
  const std::vector<std::int32_t> labels = {1, 0};
  const float lambda = 0.1f;
  {  // the first step of the training-step example, so that the regression weights are off zero
    stn::SGD optimizer({{model->parameters()}}, {.learning_rate = 0.05f});
    stn::Tape tape;
    tape.backward(stn::cross_entropy(model->forward(tape.input(images)), labels));
    optimizer.step();
    optimizer.zero_grad();
  }
  // [doc: gradient-penalty]
  stn::Tape tape;
  stn::Var x = tape.input(images, /*requires_grad=*/true);
  stn::Var loss = stn::cross_entropy(model->forward(x), labels);
  stn::Var dx = stn::grad(loss, {x}, {.create_graph = true})[0];  // recorded: d loss / d image
  stn::Var total = loss + stn::sum(dx * dx) * lambda;
  tape.backward(total);  // through the recorded backward too: second derivatives
  // [end]
  std::ostringstream out;
  out << "loss " << loss.value()(0) << ", penalty " << (total.value()(0) - loss.value()(0)) << "\n"
      << tape.to_string();
  return out.str();
}

// The training-step printout, captured from std::cout (the example prints as a user would).
std::string captured(const std::function<std::string()>& f) {
  std::ostringstream capture;
  std::streambuf* previous = std::cout.rdbuf(capture.rdbuf());
  std::string returned;
  try {
    returned = f();
  } catch (...) {
    std::cout.rdbuf(previous);
    throw;
  }
  std::cout.rdbuf(previous);
  return capture.str() + returned;
}

std::vector<std::pair<std::string, std::function<std::string()>>> printout_makers() {
  return {{"training-step", training_step}, {"cube", cube}, {"gradient-penalty", gradient_penalty}};
}

std::map<std::string, std::string> printouts() {
  std::map<std::string, std::string> all;
  for (const auto& [name, make] : printout_makers()) all[name] = captured(make);
  return all;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Position and length of the fenced block's body after "<!-- KIND: NAME -->".
bool find_block(const std::string& doc, const std::string& kind, const std::string& name,
                const std::string& fence, std::size_t& start, std::size_t& length) {
  const std::string marker = "<!-- " + kind + ": " + name + " -->\n" + fence + "\n";
  std::size_t at = doc.find(marker);
  if (at == std::string::npos) return false;
  start = at + marker.size();
  const std::size_t end = doc.find("```\n", start);
  if (end == std::string::npos) return false;
  length = end - start;
  return true;
}

std::map<std::string, std::string> code_blocks(const std::string& source) {
  std::map<std::string, std::string> blocks;
  std::istringstream in(source);
  std::string line, name, body;
  std::size_t indent = 0;
  while (std::getline(in, line)) {
    // Markers are whole lines (indented or not), so this parser's own string literals are not.
    const std::size_t open = line.find_first_not_of(' ');
    const std::string text = open == std::string::npos ? "" : line.substr(open);
    if (text.rfind("// [doc: ", 0) == 0) {
      name = line.substr(open + 9, line.find(']', open) - open - 9);
      indent = open;
      body.clear();
    } else if (!name.empty() && text == "// [end]") {
      blocks[name] = body;
      name.clear();
    } else if (!name.empty()) {
      body += (line.size() >= indent ? line.substr(indent) : line) + "\n";
    }
  }
  return blocks;
}

int check(const std::string& doc_path, const std::string& source_path) {
  const std::string doc = read(doc_path);
  int failures = 0;
  auto compare = [&](const std::string& kind, const std::string& fence, const std::string& name,
                     const std::string& expected) {
    std::size_t start = 0, length = 0;
    if (!find_block(doc, kind, name, fence, start, length)) {
      std::cerr << doc_path << ": no block \"<!-- " << kind << ": " << name << " -->\" followed by " << fence << "\n";
      ++failures;
    } else if (doc.substr(start, length) != expected) {
      std::cerr << doc_path << ": the " << kind << " \"" << name << "\" differs; it is now:\n" << expected
                << "(regenerate with autodiff_doc --update)\n";
      ++failures;
    }
  };
  for (const auto& [name, text] : printouts()) compare("printout", "```text", name, text);
  for (const auto& [name, text] : code_blocks(read(source_path))) compare("code", "```cpp", name, text);
  if (failures == 0) std::cout << doc_path << ": every printout and code block is current\n";
  return failures == 0 ? 0 : 1;
}

int update(const std::string& doc_path, const std::string& source_path) {
  std::string doc = read(doc_path);
  auto replace = [&](const std::string& kind, const std::string& fence, const std::string& name,
                     const std::string& text) {
    std::size_t start = 0, length = 0;
    if (!find_block(doc, kind, name, fence, start, length)) {
      std::cerr << doc_path << ": no block for " << kind << " \"" << name << "\"; add the marker first\n";
      return false;
    }
    doc.replace(start, length, text);
    return true;
  };
  bool ok = true;
  for (const auto& [name, text] : printouts()) ok &= replace("printout", "```text", name, text);
  for (const auto& [name, text] : code_blocks(read(source_path))) ok &= replace("code", "```cpp", name, text);
  std::ofstream(doc_path) << doc;
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--check" && argc == 4) return check(argv[2], argv[3]);
    if (mode == "--update" && argc == 4) return update(argv[2], argv[3]);
    if (argc == 1) {
      for (const auto& [name, make] : printout_makers()) std::cout << "== " << name << "\n" << captured(make) << "\n";
      return 0;
    }
    std::cerr << "usage: autodiff_doc [--check DOC SOURCE | --update DOC SOURCE]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "autodiff_doc: " << e.what() << "\n";
    return 1;
  }
}
