# Bad arguments of the executor pool's directives fail at configuration time (nginx -t) with a
# message naming the directive, as in t/005 and t/019.
use Test::Nginx::Socket;

# must_die blocks: 1 (nginx died) + 1 per error_log pattern (one each).
plan tests => repeat_each() * (blocks() * 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: fephp_executor_transport with an unknown transport
--- http_config
    fephp_executor_transport pipe;
--- config
    location ~ \.php$ { fephp_pass executors; }
--- must_die
--- error_log
"fephp_executor_transport" directive: invalid value "pipe" (socket or shm)



=== TEST 2: fephp_executor_transport twice
--- http_config
    fephp_executor_transport shm;
    fephp_executor_transport socket;
--- config
    location ~ \.php$ { fephp_pass executors; }
--- must_die
--- error_log
"fephp_executor_transport" directive: is duplicate



=== TEST 3: fephp_executor_transport in a location
--- config
    location ~ \.php$ { fephp_executor_transport shm; fephp_pass executors; }
--- must_die
--- error_log
"fephp_executor_transport" directive is not allowed here



=== TEST 4: fephp_executor_binary with a relative path
--- http_config
    fephp_executor_binary bin/fe-php;
--- config
    location ~ \.php$ { fephp_pass executors; }
--- must_die
--- error_log
"fephp_executor_binary" directive: "bin/fe-php" is not an absolute path to a file
