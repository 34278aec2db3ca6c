using Orleans.LIFL.Cli;

// Socket completions run on the socket engine's own thread instead of being handed to the thread pool. The
// transport's read and write loops only parse, enqueue and return, so this removes a thread hand-off (and the
// context switch) per receive and send: on this 2-core machine it raised gateway calls/s by about a third.
// Read once, when the first socket is used: it must be set before anything opens one.
Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

var parseResult = LiflCommandLine.Create().Parse(args);
var exitCode = await parseResult.InvokeAsync();

// System.CommandLine reports a malformed command line with 1; usage errors are 2 throughout this program.
return parseResult.Errors.Count > 0 ? ExitCodes.UsageError : exitCode;
