<?php $d = json_decode(file_get_contents("php://input"), true); header("Content-Type: application/json"); echo json_encode(["got" => $d, "post_empty" => empty($_POST)]);
