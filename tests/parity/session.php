<?php session_id("parityfixedsessionid0001"); session_start(); $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1; echo "n=", $_SESSION["n"]; session_write_close();
