// A list most connects never fill: a race's racers and failures, the attempts the core closes, a
// driver's second attempt in flight. It is one pointer until the first element, so a connect with
// one attempt at a time (the common case) pays a test to destroy it, not a vector's out-of-line
// destructor (P1 in docs/benchmarks.md counts them).
module;
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>
export module connpolicy.decision:rare_list;

export namespace connpolicy::detail {

template <class T>
class RareList {
 public:
  bool empty() const noexcept { return !items_ || items_->empty(); }
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (!items_) items_ = std::make_unique<std::vector<T>>();
    return items_->emplace_back(std::forward<Args>(args)...);
  }
  T& operator[](std::size_t i) noexcept { return (*items_)[i]; }
  const T& operator[](std::size_t i) const noexcept { return (*items_)[i]; }
  T& back() noexcept { return items_->back(); }
  const T& back() const noexcept { return items_->back(); }
  T* begin() noexcept { return items_ ? items_->data() : nullptr; }
  T* end() noexcept { return items_ ? items_->data() + items_->size() : nullptr; }
  const T* begin() const noexcept { return items_ ? items_->data() : nullptr; }
  const T* end() const noexcept { return items_ ? items_->data() + items_->size() : nullptr; }
  // Removes the element at `at` (from begin()), keeping the others' order.
  void erase(const T* at) { items_->erase(items_->begin() + (at - begin())); }
  // Removes the first `n` elements.
  void erase_first(std::size_t n) {
    if (n > 0) items_->erase(items_->begin(), items_->begin() + static_cast<std::ptrdiff_t>(n));
  }
  void pop_back() noexcept { items_->pop_back(); }
  void clear() noexcept {
    if (items_) items_->clear();
  }
  // Every element, moved out; the list is left empty.
  std::vector<T> take_all() noexcept {
    if (!items_) return {};
    return std::exchange(*items_, {});
  }

 private:
  std::unique_ptr<std::vector<T>> items_;
};

}  // namespace connpolicy::detail
