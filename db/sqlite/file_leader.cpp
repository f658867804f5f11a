#include "db/sqlite/file_leader.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace db::sqlite {

core::Result<std::unique_ptr<FileLeader>> FileLeader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return core::Status::unavailable("cannot open the leader lock file " + path + ": " +
                                     std::strerror(errno));
  }
  return std::unique_ptr<FileLeader>(new FileLeader(fd));
}

FileLeader::~FileLeader() {
  ::close(fd_);  // releases the lock, if held
}

bool FileLeader::held() {
  std::lock_guard lock(mu_);
  if (!held_) held_ = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  return held_;
}

void FileLeader::resign() noexcept {
  std::lock_guard lock(mu_);
  if (held_) (void)::flock(fd_, LOCK_UN);
  held_ = false;
}

}  // namespace db::sqlite
