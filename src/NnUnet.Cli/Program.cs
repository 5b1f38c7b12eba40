using NnUnet.Cli;

return NnUnetApp.Run(args);
