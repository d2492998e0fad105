jaxrl bench --suite gpu --out bench-gpu
