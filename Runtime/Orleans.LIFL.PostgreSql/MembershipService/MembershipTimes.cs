namespace Orleans.LIFL.PostgreSql;

/// <summary>How membership times are stored: UTC, and (in timestamptz(3) columns) whole milliseconds.</summary>
internal static class MembershipTimes
{
    /// <summary>A local time is converted; a time of unspecified kind is taken to be UTC already.</summary>
    public static DateTime ToUtc(DateTime time) => time.Kind switch
    {
        DateTimeKind.Utc => time,
        DateTimeKind.Local => time.ToUniversalTime(),
        _ => DateTime.SpecifyKind(time, DateTimeKind.Utc),
    };

    /// <summary>Truncates to the millisecond, so what is read back is predictable (PostgreSQL would round).</summary>
    public static DateTime ToColumn(DateTime time)
    {
        var utc = ToUtc(time);
        return new DateTime(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);
    }
}
