/* A Bacula daemon stand-in for tests/test_fuzz_agents.py: accepts every configuration (-t),
   and otherwise forks a child that keeps its command line (-c CONFIG ...) and never answers,
   as a wedged daemon would. Under a directory named "stubborn" the child ignores SIGTERM. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-t") == 0)
            return 0;
    if (fork() != 0)
        return 0; /* the parent returns at once, as a daemon that forks away */
    setsid();
    if (strstr(argv[0], "/stubborn/"))
        signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
}
