// Compile-time contracts of the core.
#include <catch2/catch.hpp>
#include <chrono>
#include <expected>
#include <system_error>
#include <type_traits>
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;

namespace {
// Everything a system API needs but close(): must not satisfy the concept.
struct NoClose {
  cp::expected<cp::native_handle_type, std::error_code> open_socket(cp::Family, bool);
  std::error_code set_option(cp::native_handle_type, cp::SocketOption, int);
  std::error_code set_nonblocking(cp::native_handle_type, bool);
  std::error_code bind(cp::native_handle_type, const cp::Endpoint&);
  std::error_code connect(cp::native_handle_type, const cp::Endpoint&);
  cp::expected<bool, std::error_code> wait_writable(cp::native_handle_type, std::chrono::milliseconds);
  std::error_code pending_error(cp::native_handle_type);
  cp::expected<cp::Endpoint, std::error_code> local_endpoint(cp::native_handle_type);
  cp::expected<cp::Endpoint, std::error_code> remote_endpoint(cp::native_handle_type);
};
struct WithClose : NoClose {
  std::error_code close(cp::native_handle_type);
};
// Returns an int instead of an error_code from bind: wrong contract.
struct WrongBind : WithClose {
  int bind(cp::native_handle_type, const cp::Endpoint&);
};
}  // namespace

TEST_CASE("the real and the fake system satisfy SystemApi, incomplete ones do not", "[concepts]") {
  STATIC_REQUIRE(cp::SystemApi<cp::NativeSystem>);
  STATIC_REQUIRE(cp::SystemApi<cp::FakeSystem>);
  STATIC_REQUIRE(cp::SystemApi<WithClose>);
  STATIC_REQUIRE_FALSE(cp::SystemApi<NoClose>);
  STATIC_REQUIRE_FALSE(cp::SystemApi<WrongBind>);
  STATIC_REQUIRE_FALSE(cp::SystemApi<int>);
}

TEST_CASE("the expected alias is std::expected, and errors are condition enums", "[concepts]") {
  STATIC_REQUIRE(std::is_same_v<cp::expected<int, cp::NetError>, std::expected<int, cp::NetError>>);
  STATIC_REQUIRE(std::is_error_condition_enum_v<cp::Errc>);
  STATIC_REQUIRE(std::is_error_code_enum_v<cp::LibraryError>);
  STATIC_REQUIRE(std::is_empty_v<cp::NativeSystem>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<cp::PortReservation>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<cp::PortReservation>);
}
