//===- ExpertLoad.cpp - how unevenly routing fills the experts -------------===//
#include "compiler/cost/ExpertLoad.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <numeric>

namespace moec::cost {

double ExpertLoad::busiestRank(int64_t ep) const {
  if (ep <= 1 || layers.empty())
    return 1;
  double sum = 0;
  for (const std::vector<double> &tokens : layers) {
    int64_t experts = static_cast<int64_t>(tokens.size());
    double total = std::accumulate(tokens.begin(), tokens.end(), 0.0);
    if (experts % ep != 0 || total <= 0)
      return 1;
    double busiest = 0;
    for (int64_t rank = 0; rank < ep; ++rank) {
      auto first = tokens.begin() + rank * (experts / ep);
      busiest = std::max(busiest, std::accumulate(first, first + experts / ep, 0.0));
    }
    sum += busiest / (total / double(ep));
  }
  return sum / double(layers.size());
}

std::optional<ExpertLoad> readExpertLoad(const std::string &path, std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read the training log '" + path + "'";
    return std::nullopt;
  }
  // Each step's layers, as read.
  std::vector<std::vector<std::vector<double>>> steps;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto where = [&] { return path + ":" + std::to_string(number) + ": "; };
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      error = where() + "not a JSON object (a moe-run --log line)";
      return std::nullopt;
    }
    auto layers = record.find("layers");
    if (layers == record.end())
      continue; // an evaluation or other record
    std::vector<std::vector<double>> step;
    for (const nlohmann::json &layer : *layers) {
      auto tokens = layer.is_object() ? layer.find("expert_tokens") : layer.end();
      if (!layer.is_object() || tokens == layer.end() || !tokens->is_array() || tokens->empty()) {
        error = where() + "a layer without 'expert_tokens' (a list of token counts)";
        return std::nullopt;
      }
      std::vector<double> counts;
      for (const nlohmann::json &count : *tokens) {
        if (!count.is_number() || count.get<double>() < 0) {
          error = where() + "'expert_tokens' holds something other than a token count";
          return std::nullopt;
        }
        counts.push_back(count.get<double>());
      }
      step.push_back(std::move(counts));
    }
    if (!steps.empty() &&
        (step.size() != steps[0].size() ||
         !std::equal(step.begin(), step.end(), steps[0].begin(),
                     [](const auto &a, const auto &b) { return a.size() == b.size(); }))) {
      error = where() + "its layers or experts differ from the first step's";
      return std::nullopt;
    }
    steps.push_back(std::move(step));
  }
  if (steps.empty() || steps[0].empty()) {
    error = path + ": no step with 'expert_tokens' (write one with moe-run --log)";
    return std::nullopt;
  }
  // The first step's router is untrained; later ones say how training goes.
  size_t first = steps.size() > 1 ? 1 : 0;
  ExpertLoad load;
  load.steps = static_cast<int64_t>(steps.size() - first);
  load.layers = steps[first];
  for (size_t s = first + 1; s < steps.size(); ++s)
    for (size_t l = 0; l < load.layers.size(); ++l)
      for (size_t e = 0; e < load.layers[l].size(); ++e)
        load.layers[l][e] += steps[s][l][e];
  for (std::vector<double> &layer : load.layers)
    for (double &tokens : layer)
      tokens /= double(load.steps);
  return load;
}

} // namespace moec::cost
