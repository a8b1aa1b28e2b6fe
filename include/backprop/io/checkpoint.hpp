// SPDX-License-Identifier: MIT
// backprop::io: model state_dicts and full training checkpoints as safetensors files.
#pragma once

#include <cctype>
#include <cstdint>
#include <locale>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "../module.hpp"
#include "../optimizer.hpp"
#include "../random.hpp"
#include "../sgd.hpp"
#include "safetensors.hpp"

namespace backprop::io {

/// How load_state_dict matches the file's tensors to the model's state_dict keys.
struct LoadOptions {
  /// As PyTorch's load_state_dict(strict=True): every model key must be in the file and
  /// every file tensor must be a model key. When false, those are reported in LoadResult
  /// instead. A wrong shape or dtype is an error either way, as in PyTorch.
  bool strict = true;
  /// Skip file tensors named "optimizer.*" (the optimizer state save_checkpoint adds), so
  /// the weights of a full checkpoint load into a model with the default options.
  bool ignore_optimizer = true;
};

/// What load_state_dict found: PyTorch's missing_keys and unexpected_keys (empty when
/// strict, since then they are errors), and the file's metadata.
struct LoadResult {
  std::vector<std::string> missing_keys, unexpected_keys;
  Metadata metadata;
};

/// Training state restored by load_checkpoint besides the tensors.
struct CheckpointState {
  std::int64_t epoch;                // as given to save_checkpoint
  double lr;                         // the optimizer's lr when saved (now set again)
  Generator::State generator_state;  // the generator's state when saved (now set again)
  Metadata metadata;                 // all metadata, including the caller's extra entries
};

}  // namespace backprop::io

namespace backprop::detail {

// The model's tensors as the writer wants them: state_dict names, F32/F64 or I64.
template <typename T>
std::vector<io::TensorRef> state_refs(Module<T>& module) {
  std::vector<io::TensorRef> refs;
  for (const StateEntry<T>& e : module.state_dict())
    std::visit([&](const auto* t) { refs.push_back(io::tensor_ref(e.name, *t)); }, e.tensor);
  return refs;
}

// A copy planned while validating and done only once everything is known to fit, so that a
// failed load leaves the model untouched (PyTorch's load_state_dict is not all-or-nothing).
struct StateCopy {
  void* dst;
  const io::SafetensorsTensor* src;
};

inline void check_fits(const io::SafetensorsFile& file, const io::SafetensorsTensor& t,
                       io::Dtype dtype, const Shape& shape, const char* owner) {
  if (t.dtype != dtype)
    safetensors_fail(file.path, "tensor ", quote(t.name), " has dtype ", io::dtype_name(t.dtype),
                     " in the file, the ", owner, " expects ", io::dtype_name(dtype));
  if (t.shape != shape)
    safetensors_fail(file.path, "tensor ", quote(t.name), " has shape ", shape_str(t.shape),
                     " in the file, the ", owner, " expects ", shape_str(shape));
}

inline std::string first_of(const std::vector<std::string>& names) {
  std::string s = quote(names.front());
  if (names.size() > 1) s += " (and " + std::to_string(names.size() - 1) + " more)";
  return s;
}

// Validates the file against the model and returns the copies to make. `claimed` names
// file tensors someone else (the checkpoint loader) takes, which are then not unexpected.
template <typename T>
std::vector<StateCopy> plan_state_load(const io::SafetensorsFile& file, Module<T>& module,
                                       const io::LoadOptions& options, io::LoadResult& result,
                                       const std::unordered_set<std::string>& claimed = {}) {
  std::unordered_map<std::string, const io::SafetensorsTensor*> by_name;
  for (const io::SafetensorsTensor& t : file.tensors) by_name.emplace(t.name, &t);
  std::vector<StateCopy> copies;
  std::unordered_set<std::string> known;
  for (const StateEntry<T>& e : module.state_dict()) {
    known.insert(e.name);
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      result.missing_keys.push_back(e.name);
      continue;
    }
    std::visit(
        [&](auto* t) {
          using U = typename std::remove_pointer_t<decltype(t)>::Scalar;
          check_fits(file, *it->second, io::dtype_of<U>(), t->shape(), "model");
          copies.push_back({t->data(), it->second});
        },
        e.tensor);
  }
  for (const io::SafetensorsTensor& t : file.tensors) {
    if (known.count(t.name) || claimed.count(t.name)) continue;
    if (options.ignore_optimizer && t.name.rfind("optimizer.", 0) == 0) continue;
    result.unexpected_keys.push_back(t.name);
  }
  if (options.strict && !result.missing_keys.empty())
    safetensors_fail(file.path, "tensor ", first_of(result.missing_keys),
                     " of the model is missing from the file");
  if (options.strict && !result.unexpected_keys.empty())
    safetensors_fail(file.path, "unexpected tensor ", first_of(result.unexpected_keys),
                     " in the file: the model has no such key");
  return copies;
}

// Cannot fail: every size was checked by plan_state_load().
inline void commit_state_load(const std::vector<StateCopy>& copies) noexcept {
  for (const StateCopy& c : copies)
    copy_le(c.dst, c.src->data.data(), c.src->data.size(), io::dtype_size(c.src->dtype));
}

// Metadata values are strings; these print and parse them exactly, in the "C" locale
// whatever the global one is, and reject anything but the whole string.
inline std::string format_double(double v) {
  std::string s;
  for (int digits = 1; digits <= 17; ++digits) {  // the shortest string that reads back as v
    std::ostringstream out;
    out.imbue(std::locale::classic());
    out.precision(digits);
    out << v;
    s = out.str();
    std::istringstream in(s);
    in.imbue(std::locale::classic());
    double back = 0;
    if (in >> back && back == v) break;
  }
  return s;
}

template <typename Number>
Number parse_metadata_number(const io::SafetensorsFile& file, const std::string& key) {
  const auto it = file.metadata.find(key);
  if (it == file.metadata.end())
    safetensors_fail(file.path, "metadata ", quote(key), " is missing (saved by save_checkpoint?)");
  const std::string& s = it->second;
  std::istringstream in(s);
  in.imbue(std::locale::classic());
  Number v{};
  const bool digit_first = !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) ||
                                          (s[0] == '-' && std::is_signed_v<Number>));
  if (!digit_first || !(in >> v) || in.peek() != std::char_traits<char>::eof())
    safetensors_fail(file.path, "metadata ", quote(key), " is ", quote(s), ", not a number");
  return v;
}

// The optimizer's state as file entries: "optimizer.<state name>.<parameter name>" tensors
// and "optimizer.<counter name>" metadata (PyTorch's state names: step, exp_avg, ...).
template <typename T>
struct SaveState : OptimizerStateVisitor<T> {
  const std::string& path;
  const std::vector<Parameter<T>>& params;
  std::vector<io::TensorRef>& refs;
  io::Metadata& metadata;
  SaveState(const std::string& p, const std::vector<Parameter<T>>& ps,
            std::vector<io::TensorRef>& r, io::Metadata& m)
      : path(p), params(ps), refs(r), metadata(m) {}
  void tensors(std::string_view name, std::vector<Tensor<T>>& per_parameter) override {
    if (!per_parameter.empty() && per_parameter.size() != params.size())
      safetensors_fail(path, "the optimizer has ", per_parameter.size(), " ", name, " tensors for ",
                       params.size(), " parameters");
    for (std::size_t i = 0; i < per_parameter.size(); ++i)
      refs.push_back(io::tensor_ref("optimizer." + std::string(name) + "." + params[i].name,
                                    per_parameter[i]));
  }
  void counter(std::string_view name, std::int64_t& value) override {
    metadata["optimizer." + std::string(name)] = std::to_string(value);
  }
};

// Reads the optimizer's state from the file into tensors and values kept aside (this
// allocates and may fail), for commit() to swap in once the whole file is known good.
template <typename T>
struct LoadState : OptimizerStateVisitor<T> {
  const io::SafetensorsFile& file;
  const std::vector<Parameter<T>>& params;
  std::unordered_set<std::string> claimed;
  std::vector<std::pair<std::vector<Tensor<T>>*, std::vector<Tensor<T>>>> tensor_lists;
  std::vector<std::pair<std::int64_t*, std::int64_t>> counters;
  LoadState(const io::SafetensorsFile& f, const std::vector<Parameter<T>>& ps)
      : file(f), params(ps) {}
  void tensors(std::string_view name, std::vector<Tensor<T>>& per_parameter) override {
    std::vector<Tensor<T>> loaded;
    std::vector<std::string> absent;
    for (const Parameter<T>& p : params) {
      const std::string key = "optimizer." + std::string(name) + "." + p.name;
      const io::SafetensorsTensor* t = file.find(key);
      if (!t) {
        absent.push_back(key);
        continue;
      }
      check_fits(file, *t, io::dtype_of<T>(), p.value->shape(), "optimizer");
      claimed.insert(key);
      loaded.push_back(file.get<T>(key));
    }
    if (!loaded.empty() && !absent.empty())
      safetensors_fail(file.path, "tensor ", first_of(absent), " is missing: the file has ", name,
                       " tensors for only some parameters");
    tensor_lists.emplace_back(&per_parameter, std::move(loaded));
  }
  void counter(std::string_view name, std::int64_t& value) override {
    const std::string key = "optimizer." + std::string(name);
    const bool present = file.metadata.count(key) != 0;
    counters.emplace_back(&value, present ? parse_metadata_number<std::int64_t>(file, key) : 0);
    if (present && counters.back().second < 0)
      safetensors_fail(file.path, "metadata ", quote(key), " is negative");
  }
  void commit() noexcept {
    for (auto& [dst, src] : tensor_lists) dst->swap(src);
    for (const auto& [dst, v] : counters) *dst = v;
  }
};

}  // namespace backprop::detail

namespace backprop::io {

/// Saves the model's state_dict: one tensor per key, named exactly as PyTorch names it
/// ("layer1.0.weight", "layer1.1.running_mean", ...), F32 for Module<float>, F64 for
/// Module<double>, I64 for num_batches_tracked, so the file loads into the PyTorch model with
/// model.load_state_dict(). Metadata gets "format": "pt" (the Hugging Face convention)
/// unless given. Atomic, as write_safetensors.
/// Example: save_state_dict("net.safetensors", model, {{"epoch", "20"}});
template <typename T>
void save_state_dict(const std::string& path, Module<T>& module, Metadata metadata = {}) {
  metadata.emplace("format", "pt");
  write_safetensors(path, detail::state_refs(module), metadata);
}

/// Loads a state_dict file into the model, as PyTorch's model.load_state_dict(): strict by
/// default (see LoadOptions), every tensor's shape and dtype checked, and all-or-nothing:
/// on any error SafetensorsError names the tensor, e.g. "ckpt.safetensors: tensor
/// 'layer1.0.weight' has shape [300, 784] in the file, the model expects [300, 700]", and
/// the model is unchanged. With the default options it also loads the weights of a full
/// checkpoint (its "optimizer.*" tensors are skipped).
/// Example: load_state_dict("net.safetensors", model);
template <typename T>
LoadResult load_state_dict(const SafetensorsFile& file, Module<T>& module,
                           const LoadOptions& options = {}) {
  LoadResult result;
  const std::vector<detail::StateCopy> copies =
      detail::plan_state_load(file, module, options, result);
  result.metadata = file.metadata;
  detail::commit_state_load(copies);
  return result;
}
template <typename T>
LoadResult load_state_dict(const std::string& path, Module<T>& module,
                           const LoadOptions& options = {}) {
  return load_state_dict(read_safetensors(path), module, options);
}

/// A full training checkpoint, from which a run resumes exactly: the model's state_dict
/// (as save_state_dict), the optimizer's state under PyTorch's names, one
/// "optimizer.<state>.<parameter name>" tensor per parameter once the optimizer has them
/// (SGD: momentum_buffer; Adam, AdamW: exp_avg, exp_avg_sq, max_exp_avg_sq with amsgrad),
/// and in the metadata (all decimal strings) "backprop.checkpoint": "1", "epoch",
/// "optimizer": its name ("SGD", "Adam", "AdamW"), "optimizer.lr", its other
/// hyper-parameters ("optimizer.momentum", "optimizer.beta1", ...), its counters
/// ("optimizer.step" for Adam), "generator.state.0" .. "generator.state.3" (xoshiro's four words),
/// plus the caller's extra entries, which may not reuse those keys. `epoch` means what the
/// caller wants; the example stores the number of finished epochs. Atomic.
/// Example: save_checkpoint("ckpt.safetensors", model, optimizer, epoch + 1, gen);
template <typename T>
void save_checkpoint(const std::string& path, Module<T>& module, Optimizer<T>& optimizer,
                     std::int64_t epoch, const Generator& generator, const Metadata& extra = {}) {
  Metadata metadata = {{"format", "pt"},
                       {"backprop.checkpoint", "1"},
                       {"epoch", std::to_string(epoch)},
                       {"optimizer", optimizer.name()},
                       {"optimizer.lr", detail::format_double(optimizer.lr())}};
  for (const auto& [key, value] : optimizer.hyperparameters())
    metadata[std::string("optimizer.") + key] = detail::format_double(value);
  for (int i = 0; i < 4; ++i)
    metadata["generator.state." + std::to_string(i)] =
        std::to_string(generator.state()[static_cast<std::size_t>(i)]);
  for (const auto& [key, value] : extra)
    if (!metadata.emplace(key, value).second)
      detail::safetensors_fail(path, "extra metadata key ", detail::quote(key), " is reserved");

  std::vector<TensorRef> refs = detail::state_refs(module);
  detail::SaveState<T> save(path, optimizer.parameters(), refs, metadata);
  optimizer.visit_state(save);
  write_safetensors(path, refs, metadata);
}

/// Restores what save_checkpoint saved: the model's tensors (strictly), the optimizer's
/// state (each kind all or none, shapes checked; none means "before the first step"),
/// counters and lr, and the generator's state; returns the epoch and metadata.
/// All-or-nothing: every tensor and metadata value is checked before the model, optimizer
/// or generator changes. The optimizer must be of the saved kind ("optimizer" metadata)
/// and built with the same hyperparameters (momentum, betas, amsgrad, ...). Checkpoints of
/// SGD written before the Optimizer interface load unchanged (same names).
/// Example: CheckpointState s = load_checkpoint(path, model, optimizer, gen);
template <typename T>
CheckpointState load_checkpoint(const std::string& path, Module<T>& module, Optimizer<T>& optimizer,
                                Generator& generator) {
  const SafetensorsFile file = read_safetensors(path);
  const auto marker = file.metadata.find("backprop.checkpoint");
  if (marker == file.metadata.end() || marker->second != "1")
    detail::safetensors_fail(path,
                             "not a backprop checkpoint (no metadata 'backprop.checkpoint': '1'); "
                             "a weights-only file loads with load_state_dict");
  CheckpointState state{detail::parse_metadata_number<std::int64_t>(file, "epoch"),
                        detail::parse_metadata_number<double>(file, "optimizer.lr"),
                        {},
                        file.metadata};
  for (int i = 0; i < 4; ++i)
    state.generator_state[static_cast<std::size_t>(i)] =
        detail::parse_metadata_number<std::uint64_t>(file, "generator.state." + std::to_string(i));
  if (!(state.lr >= 0))
    detail::safetensors_fail(path, "metadata 'optimizer.lr' is ",
                             detail::quote(file.metadata.at("optimizer.lr")),
                             ", not a non-negative number");

  const auto kind = file.metadata.find("optimizer");
  if (kind != file.metadata.end() && kind->second != optimizer.name())
    detail::safetensors_fail(path, "the checkpoint is of optimizer ", detail::quote(kind->second),
                             ", not ", optimizer.name());
  // The model first: its mismatch (another architecture, other image sizes) is the one to
  // name, not that of the optimizer's buffers shaped after it.
  std::unordered_set<std::string> optimizer_names;
  for (const SafetensorsTensor& t : file.tensors)
    if (t.name.rfind("optimizer.", 0) == 0) optimizer_names.insert(t.name);
  LoadResult ignored;
  const std::vector<detail::StateCopy> copies =
      detail::plan_state_load(file, module, LoadOptions{true, false}, ignored, optimizer_names);
  // The optimizer's state, built aside (this allocates) and swapped in at the end.
  detail::LoadState<T> load(file, optimizer.parameters());
  optimizer.visit_state(load);
  for (const SafetensorsTensor& t : file.tensors)  // in file order: the first is named
    if (optimizer_names.count(t.name) && !load.claimed.count(t.name))
      detail::safetensors_fail(path, "unexpected tensor ", detail::quote(t.name),
                               " in the file: the optimizer has no such parameter");
  // Nothing below can fail.
  detail::commit_state_load(copies);
  load.commit();
  optimizer.set_lr(state.lr);
  generator.set_state(state.generator_state);
  return state;
}

}  // namespace backprop::io
