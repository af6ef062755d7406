// Where the Asio driver runs what may block, so its io thread never does: a bind policy's census
// question (FixedPortRotation surveys every socket of the host: milliseconds, far more on a busy
// proxy) and a custom Resolver's lookups (AAAA and A at once). Up to `limit` threads for the
// process, made as work comes while none is idle, and never joined (a census or a lookup may still
// be running when the program ends); work beyond them waits in line, in the order given.
// Internal to connpolicy.asio.
module;
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
export module connpolicy.asio:helper_thread;

namespace connpolicy::asio::detail {

class HelperThreads {
 public:
  // As many as SystemResolver's getaddrinfo threads by default: a resolver's lookups are the
  // work that can take seconds.
  static constexpr std::size_t limit = 8;

  static HelperThreads& instance() {
    static HelperThreads* const helpers = new HelperThreads;  // never destroyed: see above
    return *helpers;
  }

  // Runs `work` on a helper thread (it must not throw). When no thread can be made and none
  // runs, runs it here: late, and on the caller's thread, rather than never.
  void run(std::function<void()> work) {
    std::unique_lock lock(mutex_);
    if (idle_ == 0 && threads_ < limit) {
      try {
        std::thread([this] { serve(); }).detach();
        ++threads_;
      } catch (const std::system_error&) {
        if (threads_ == 0) {
          lock.unlock();
          work();
          return;
        }
      }
    }
    queue_.push_back(std::move(work));
    ready_.notify_one();
  }

 private:
  void serve() {
    for (;;) {  // the process's lifetime
      std::unique_lock lock(mutex_);
      ++idle_;
      ready_.wait(lock, [&] { return !queue_.empty(); });
      --idle_;
      std::function<void()> work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::size_t threads_ = 0, idle_ = 0;
};

}  // namespace connpolicy::asio::detail
