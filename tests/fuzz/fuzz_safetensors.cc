// Fuzz target: stn::decode_safetensors (framework/io/safetensors.h), the checkpoint decoder,
// and stn::load_parameters (layers/checkpoint.h), which loads a decoded file into a model and
// must refuse missing, unexpected or differently shaped tensors. The input is the whole file.
//
// Checks: decoding either throws stn::DataError whose message starts with the source name or
// returns tensors whose names are non-empty and distinct; what decodes re-encodes and decodes
// to the same names, shapes, bits and metadata. load_parameters either throws DataError and
// leaves the model unchanged, or copies exactly the file's tensors into the model.
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/io/safetensors.h"
#include "fuzz_util.h"
#include "stn/layers/weights.h"
#include "stn/layers/linear.h"
#include "stn/layers/sequential.h"

namespace {

bool same_bits(const stn::Tensor& a, const stn::Tensor& b) {
  return stn::shape_of(a) == stn::shape_of(b) &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The model the seed checkpoints were written from: parameters "0.weight" [3, 2],
// "0.bias" [3], "1.weight" [2, 3] (no bias).
std::shared_ptr<stn::Sequential> make_model() {
  stn::Generator init(0);
  auto model = std::make_shared<stn::Sequential>();
  model->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 2, .out = 3}, init));
  model->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 3, .out = 2, .bias = false}, init));
  return model;
}

std::vector<stn::Tensor> parameter_values(const stn::Module& model) {
  std::vector<stn::Tensor> values;
  for (const stn::Parameter* p : model.parameters()) values.push_back(p->value);
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stn::fuzz::ScratchFile scratch(".safetensors");
  static const std::shared_ptr<stn::Sequential> model = make_model();
  static const std::vector<stn::Tensor> initial = parameter_values(*model);
  const std::string source = "fuzz.safetensors";
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  stn::SafetensorsFile file;
  try {
    file = stn::decode_safetensors(bytes, source);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), source.c_str(), source.size()) == 0,
               "message does not start with the source name: %s", error.what());
    return 0;
  }

  std::set<std::string> names;
  std::vector<stn::NamedTensor> named;
  for (const auto& [name, tensor] : file.tensors) {
    FUZZ_CHECK(!name.empty() && name != "__metadata__", "bad tensor name '%s'", name.c_str());
    FUZZ_CHECK(names.insert(name).second, "duplicate tensor name '%s'", name.c_str());
    FUZZ_CHECK(file.find(name) == &tensor, "find('%s') is not the first tensor of that name", name.c_str());
    named.push_back({name, &tensor});
  }
  const stn::SafetensorsFile again =
      stn::decode_safetensors(stn::encode_safetensors(named, file.metadata), "re-encoded");
  FUZZ_CHECK(again.tensors.size() == file.tensors.size() && again.metadata == file.metadata,
             "re-encoding changed the tensor count or the metadata");
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    FUZZ_CHECK(again.tensors[i].first == file.tensors[i].first, "re-encoding renamed tensor %zu", i);
    FUZZ_CHECK(same_bits(again.tensors[i].second, file.tensors[i].second),
               "re-encoding changed tensor '%s'", file.tensors[i].first.c_str());
  }

  // The loader, from the same bytes on disk. Reset the model first, so that each input
  // starts from the same parameters.
  std::vector<stn::Parameter*> parameters = model->parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) parameters[i]->value = initial[i];
  bool loaded = true;
  try {
    stn::load_parameters(scratch.write(data, size), *model);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), scratch.path().c_str(), scratch.path().size()) == 0,
               "message does not start with the path: %s", error.what());
    loaded = false;
  }
  if (loaded) FUZZ_CHECK(file.tensors.size() == parameters.size(), "loaded a file with extra tensors");
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const stn::Tensor* expected = loaded ? file.find(parameters[i]->name) : &initial[i];
    FUZZ_CHECK(expected != nullptr, "loaded a file without '%s'", parameters[i]->name.c_str());
    FUZZ_CHECK(same_bits(parameters[i]->value, *expected), "parameter '%s' is not what %s",
               parameters[i]->name.c_str(), loaded ? "the file holds" : "it was before a failed load");
  }
  return 0;
}
