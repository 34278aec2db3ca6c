namespace Orleans.LIFL.Cli;

/// <summary>The exit codes of <c>lifl</c>.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The command ran and failed (a demo step did not happen, a benchmark threw).</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong (unknown command, unknown benchmark, bad option).</summary>
    public const int UsageError = 2;

    /// <summary>Interrupted (Ctrl+C), as shells report SIGINT.</summary>
    public const int Interrupted = 130;
}
