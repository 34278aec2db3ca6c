using Microsoft.Extensions.Logging;

namespace Orleans.LIFL.Runtime.Catalog;

internal sealed partial class ActivationData
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Activation of {GrainId} failed; waiting calls get the error")]
    private static partial void LogActivationFailed(ILogger logger, Exception error, GrainId grainId);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "OnDeactivateAsync of {GrainId} failed or timed out")]
    private static partial void LogDeactivationFailed(ILogger logger, Exception error, GrainId grainId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "Deactivated {GrainId} ({Reason})")]
    private static partial void LogDeactivated(ILogger logger, GrainId grainId, DeactivationReasonCode reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Deadlock on {Method} to {GrainId}: {Description}")]
    private static partial void LogDeadlock(ILogger logger, string method, GrainId grainId, string description);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "One-way call {Method} to {GrainId} failed")]
    private static partial void LogOneWayFailed(ILogger logger, Exception error, string method, GrainId grainId);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error, Message = "A turn of {GrainId} threw outside grain code")]
    private static partial void LogTurnFailed(ILogger logger, Exception error, GrainId grainId);
}
