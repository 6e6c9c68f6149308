/* Signals are taken synchronously by main's sigwait loop, never by a worker. */
#include "main_int.h"

#include <signal.h>
#include <pthread.h>

static sigset_t handled;

void main_signals_block(void)
{
    struct sigaction sa;

    sigemptyset(&handled);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL); /* a peer that went away is an EPIPE, not a death */
}

int main_signals_wait(void)
{
    int sig = 0;

    while (sigwait(&handled, &sig) != 0)
        ;
    return sig;
}
