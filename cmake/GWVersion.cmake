# Version baked into gw_version.h at configure time; the git commit is refreshed at every build instead
# (cmake/GWGitSha.cmake, target gw_git_sha).
set(GW_VERSION ${PROJECT_VERSION})
