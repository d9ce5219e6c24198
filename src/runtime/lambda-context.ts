// AWS Lambda's names on the handler's context (awsRequestId, invokedFunctionArn,
// memoryLimitInMB, logGroupName, logStreamName), beside Lamina's own, so code
// written for Lambda runs unchanged. Pure: bundled into the node runtime and
// the isolate prelude alike.

export interface LaminaContextFields {
  requestId: string;
  functionName: string;
  functionVersion: number;
  memoryLimitMb: number;
}

/** Lamina has no AWS accounts; ARNs carry this one (as the AWS API does). */
const ACCOUNT_ID = '000000000000';

export function lambdaContextNames(c: LaminaContextFields, region = 'us-east-1', now = new Date()) {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '/');
  return {
    awsRequestId: c.requestId,
    invokedFunctionArn: `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${c.functionName}`,
    memoryLimitInMB: String(c.memoryLimitMb),
    logGroupName: `/aws/lambda/${c.functionName}`,
    logStreamName: `${day}/[${c.functionVersion}]lamina`,
    callbackWaitsForEmptyEventLoop: false,
  };
}
