module;
#include <cstddef>
#include <span>
#include <utility>
#include <vector>
#include <range/v3/algorithm/stable_sort.hpp>
#include <range/v3/range/conversion.hpp>
#include <range/v3/view/concat.hpp>
#include <range/v3/view/iota.hpp>
#include <range/v3/view/map.hpp>
#include <range/v3/view/zip.hpp>
module connpolicy.decision;
import connpolicy.core;

namespace connpolicy {

std::vector<Endpoint> interleave_families(std::span<const Endpoint> v6, std::span<const Endpoint> v4) {
  namespace views = ranges::views;
  // Each address ranked by its place in its family's list; a stable sort by rank keeps IPv6
  // before IPv4 at each rank, and each family's own order.
  const auto ranked = [](std::span<const Endpoint> list) { return views::zip(views::iota(std::size_t{0}), list); };
  auto all = views::concat(ranked(v6), ranked(v4)) | ranges::to<std::vector<std::pair<std::size_t, Endpoint>>>();
  ranges::stable_sort(all, ranges::less{}, &std::pair<std::size_t, Endpoint>::first);
  return all | views::values | ranges::to<std::vector>();
}

}  // namespace connpolicy
