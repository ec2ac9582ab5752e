// Host calibration for timing runs on shared machines: independent AVX-512 FMAs, N threads.
// Prints zmm FMAs per ns per thread and in total (quiet 2-vCPU host of 2026-11-26: 5.3 on one
// thread, 10.2 on two). Build: gcc -O2 -mavx512f -mfma scripts/host_fma_calibration.c -o fma -lpthread
// Run: ./fma 1; ./fma 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 200000000L
static void* work(void*arg){
  __m512 a0=_mm512_set1_ps(1),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,a8=a0,a9=a0;
  __m512 m=_mm512_set1_ps(0.9999999f),c=_mm512_set1_ps(1e-7f);
  for(long i=0;i<N/10;i++){
#define F(x) x=_mm512_fmadd_ps(x,m,c); __asm__ volatile("" : "+v"(x));
    F(a0)F(a1)F(a2)F(a3)F(a4)F(a5)F(a6)F(a7)F(a8)F(a9)}
  __m512 s=_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)),_mm512_add_ps(_mm512_add_ps(a4,a5),_mm512_add_ps(_mm512_add_ps(a6,a7),_mm512_add_ps(a8,a9))));
  *(float*)arg=_mm512_reduce_add_ps(s);return 0;}
int main(int argc,char**argv){int T=atoi(argv[1]);pthread_t th[8];float r[8];double t0=now();
 for(int i=0;i<T;i++)pthread_create(&th[i],0,work,&r[i]);for(int i=0;i<T;i++)pthread_join(th[i],0);
 double t=now()-t0;printf("threads %d: %.3f s, zmm FMA/ns per thread %.2f, total %.2f\n",T,t,N/t/1e9,T*N/t/1e9);}
