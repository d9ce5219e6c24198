// Returns the event it was given (CommonJS, to show that style works too).
exports.handler = async (event) => event;
