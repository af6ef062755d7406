// connpolicy.asio: the Asio driver (standalone Asio, 1.22 or later). Include <asio.hpp> before
// importing it, and build with ASIO_HAS_CO_AWAIT=1 under clang (the target connpolicy::asio
// says so for you), so that both see the same Asio.
//   async_connect  every policy of a Connector, without blocking a thread
//   TcpSocket      the connected socket, which keeps its port's lease
module;
export module connpolicy.asio;
export import :tcp_socket;
export import :async_connect;
export import :api;
