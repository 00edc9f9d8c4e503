<?php
// Does not compile: PHP reports a parse error, which ends the request.
function broken( {
