// FakeResolver: a name's answers, scripted per family, for tests. Each lookup takes its scripted
// delay on a ManualTimer (no real time passes), so a test can check what a connect does when the
// AAAA answer is 30 ms late, or never comes within the limit.
//
//     connpolicy::ManualTimer timer;
//     connpolicy::FakeResolver names(&timer);
//     names.answer("login.example.com", Family::ipv6, {.addresses = {v6}, .delay = 30ms})
//          .answer("login.example.com", Family::ipv4, {.addresses = {v4}});
//     client.connect(*HostPort::parse("login.example.com:7000"), names);
//
// Answers for one name and family are given in the order scripted, the last one again and again
// (script try_again, then an address, to test a retry). A name and family with no script has no
// address. Copies share the script and the record.
module;
#include <chrono>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>
export module connpolicy.testing:fake_resolver;
import connpolicy.core;
import :manual_timer;

export namespace connpolicy {

struct FakeAnswer {
  std::vector<Endpoint> addresses;    // their ports are replaced by the name's
  std::error_code error;              // when set: the lookup fails with it (Step::resolve)
  std::chrono::milliseconds delay{};  // how long the lookup takes, on the timer
};

class FakeResolver {
 public:
  explicit FakeResolver(ManualTimer* timer = nullptr);

  FakeResolver& answer(std::string host, Family family, FakeAnswer answer);
  // Within `limit`, or timed out after it; cancelled when `stop` is requested before the answer.
  expected<std::vector<Endpoint>, NetError> resolve(const HostPort& name, Family family,
                                                    std::chrono::milliseconds limit, std::stop_token stop);
  // Every lookup so far, in order: "login.example.com AAAA", "login.example.com A".
  std::vector<std::string> asked() const;

 private:
  struct Script;
  std::shared_ptr<Script> script_;
};

}  // namespace connpolicy
