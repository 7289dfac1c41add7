<?php set_exception_handler(function ($e) { echo "handled: ", $e->getMessage(); }); throw new LogicException("caught by handler");
