// Where the Asio driver runs what may block, so its io thread never does: a bind policy's census
// question (FixedPortRotation surveys every socket of the host: milliseconds, far more on a busy
// proxy). One thread for the process, made on first use and never joined (a census may still be
// running when the program ends), taking work in the order given: censuses of one rotation join
// one another anyway, so a second thread would mostly wait. Internal to connpolicy.asio.
module;
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
export module connpolicy.asio:helper_thread;

namespace connpolicy::asio::detail {

class HelperThread {
 public:
  static HelperThread& instance() {
    static HelperThread* const helper = new HelperThread;  // never destroyed: see above
    return *helper;
  }

  // Runs `work` on the helper thread (it must not throw). When no thread can be made, runs it
  // here: late, and on the caller's thread, rather than never.
  void run(std::function<void()> work) {
    std::unique_lock lock(mutex_);
    if (!started_) {
      try {
        std::thread([this] { serve(); }).detach();
        started_ = true;
      } catch (const std::system_error&) {
        lock.unlock();
        work();
        return;
      }
    }
    queue_.push_back(std::move(work));
    ready_.notify_one();
  }

 private:
  void serve() {
    for (;;) {  // the process's lifetime
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty(); });
      std::function<void()> work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool started_ = false;
};

}  // namespace connpolicy::asio::detail
