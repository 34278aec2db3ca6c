using System.Diagnostics;
using System.Globalization;

namespace Orleans.LIFL.Diagnostics;

/// <summary>This process's CPU time and memory as the kernel counts them (/proc/self), for silo statistics and round metrics.</summary>
public static class ProcessResources
{
    /// <summary>CPU time (user + system) the process has used since it started.</summary>
    public static double CpuSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>The peak resident set since the process started or <see cref="ResetPeak"/> (VmHWM); the working set where /proc cannot tell.</summary>
    public static long PeakResidentBytes() => ReadStatus("VmHWM:") ?? Environment.WorkingSet;

    /// <summary>The resident set now (VmRSS); the working set where /proc cannot tell.</summary>
    public static long ResidentBytes() => ReadStatus("VmRSS:") ?? Environment.WorkingSet;

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

    private static long? ReadStatus(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
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
