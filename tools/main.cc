#include <cstdio>
int main() {
  std::puts("hubimg");
  return 0;
}
