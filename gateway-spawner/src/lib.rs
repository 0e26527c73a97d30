//! wick-gateway-spawner: the only wick process that may create processes; starts CGI
//! scripts and FastCGI/SCGI backends on behalf of workers, after checking each request
//! against its own copy of the config.
