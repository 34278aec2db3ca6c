using System.Diagnostics;
using System.Globalization;

namespace Orleans.LIFL.Diagnostics;

/// <summary>
/// CPU time and memory as the kernel counts them (/proc), of this process (silo statistics, round metrics) or of
/// another one read from outside it (benchmarks watching silo processes).
/// </summary>
public static class ProcessResources
{
    /// <summary>CPU time (user + system) the process has used since it started.</summary>
    public static double CpuSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>CPU time (user + system) process <paramref name="pid"/> has used; 0 once it is gone.</summary>
    public static double CpuSeconds(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.TotalProcessorTime.TotalSeconds;
        }
        catch (Exception error) when (error is ArgumentException or InvalidOperationException)
        {
            return 0;
        }
    }

    /// <summary>The peak resident set since the process started or <see cref="ResetPeak"/> (VmHWM); the working set where /proc cannot tell.</summary>
    public static long PeakResidentBytes() => ReadStatus("self", "VmHWM:") ?? Environment.WorkingSet;

    /// <summary>The resident set now (VmRSS); the working set where /proc cannot tell.</summary>
    public static long ResidentBytes() => ReadStatus("self", "VmRSS:") ?? Environment.WorkingSet;

    /// <summary>
    /// Process <paramref name="pid"/>'s private resident memory (RssAnon: its heaps, without the pages of shared
    /// memory it maps); 0 once it is gone or where /proc cannot tell.
    /// </summary>
    public static long PrivateResidentBytes(int pid) => ReadStatus(pid.ToString(CultureInfo.InvariantCulture), "RssAnon:") ?? 0;

    /// <summary>Starts a new peak from the current resident set (Linux: "5" to /proc/self/clear_refs); false where that is not possible.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long? ReadStatus(string process, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{process}/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var kibibytes = line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim();
                    return long.Parse(kibibytes, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return null;
    }
}
