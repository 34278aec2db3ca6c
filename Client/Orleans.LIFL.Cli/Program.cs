using Orleans.LIFL.Cli;

var parseResult = LiflCommandLine.Create().Parse(args);
var exitCode = await parseResult.InvokeAsync();

// System.CommandLine reports a malformed command line with 1; usage errors are 2 throughout this program.
return parseResult.Errors.Count > 0 ? ExitCodes.UsageError : exitCode;
