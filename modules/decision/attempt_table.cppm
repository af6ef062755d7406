// A driver's sockets in flight, by the core's AttemptId. The first lives inline, so a connect
// with one attempt at a time (no race) allocates nothing for it; the others live on the heap, each
// where it was put (an Asio socket with a connect pending never moves).
module;
#include <iterator>
#include <memory>
#include <vector>
#include <optional>
#include <utility>
export module connpolicy.decision:attempt_table;
import :protocol;
import :rare_list;

export namespace connpolicy::detail {

template <class T>
class AttemptTable {
 public:
  struct Entry {
    template <class... Args>
    explicit Entry(AttemptId i, Args&&... args) : id(i), value(std::forward<Args>(args)...) {}
    AttemptId id;
    T value;
  };

  // Attempt `id`'s value, made in its place from `args`.
  template <class... Args>
  T& add(AttemptId id, Args&&... args) {
    if (!first_) return first_.emplace(id, std::forward<Args>(args)...).value;
    return more_.emplace_back(std::make_unique<Entry>(id, std::forward<Args>(args)...))->value;
  }
  T* find(AttemptId id) noexcept {
    if (first_ && first_->id == id) return &first_->value;
    for (auto& e : more_)
      if (e->id == id) return &e->value;
    return nullptr;
  }
  // The first entry `pred` holds for, left in; null when none.
  template <class Pred>
  Entry* find_if(Pred pred) {
    if (first_ && pred(first_->value)) return &*first_;
    for (auto& e : more_)
      if (pred(e->value)) return e.get();
    return nullptr;
  }
  // Removes attempt `id`, if it is in.
  void erase(AttemptId id) noexcept {
    if (first_ && first_->id == id) return first_.reset();
    for (auto& e : more_)
      if (e->id == id) return more_.erase(&e);
  }
  template <class F>
  void for_each(F f) {
    if (first_) f(first_->id, first_->value);
    for (auto& e : more_) f(e->id, e->value);
  }
  bool empty() const noexcept { return !first_ && more_.empty(); }
  std::size_t size() const noexcept { return (first_ ? 1 : 0) + more_.size(); }
  void clear() noexcept {
    first_.reset();
    more_.clear();
  }

 private:
  std::optional<Entry> first_;
  RareList<std::unique_ptr<Entry>> more_;
};

}  // namespace connpolicy::detail
